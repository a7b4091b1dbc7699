"""Office: VBA macros (olevba), DDE links (msodde), embedded OLE objects and encryption in Office documents."""
