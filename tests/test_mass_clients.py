"""MASS's domain, IP and URI analysis clients: analyses written as in the MASS tutorial (only
their imports changed) get their kind of sample, the sample dict MASS gives, report as MASS
does, and relate what they find."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.messages import ObjectKind, Relation, SampleKind
from schemas.samples import KIND_TYPES
from schemas.taxonomy import matching_types
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from services.sdk.manifest import ManifestError

# Written as the tutorial's SizeAnalysisInstance, for the other three kinds of sample.
DOMAIN_ANALYSIS = '''
from services.sdk.mass import DomainAnalysisClient

class DomainLabelAnalysis(DomainAnalysisClient):
    def __init__(self, config):
        super(DomainLabelAnalysis, self).__init__(config)

    def do_analysis(self, analysis_request):
        """ Count the labels of the domain and relate the address it resolves to.
        """
        domain = self.sample_dict['domain']
        labels = domain.split('.')
        self.submit_report(analysis_request['url'],
                           additional_metadata={'labels': len(labels), 'class': self.sample_dict['_cls']},
                           json_report_objects={'label analysis': {'labels': labels}},
                           )
        self.submit_contacted_by_sample_relation(self.sample_dict['url'], '192.0.2.10')
'''

IP_ANALYSIS = '''
import ipaddress
from services.sdk.mass import IPAnalysisClient

class IPScopeAnalysis(IPAnalysisClient):
    def __init__(self, config):
        super(IPScopeAnalysis, self).__init__(config)

    def do_analysis(self, analysis_request):
        address = ipaddress.ip_address(self.sample_dict['ip_address'])
        self.submit_report(analysis_request['url'],
                           additional_metadata={'private': address.is_private, 'version': address.version},
                           raw_report_objects={'address.txt': str(address).encode('ascii')},
                           )
        self.submit_resolved_by_sample_relation(self.sample_dict['url'], 'ptr.example.net')
        try:
            self.submit_contacted_by_sample_relation(self.sample_dict['url'], '999.1.1.1')
        except ValueError as e:
            self.submit_report(analysis_request['url'], additional_metadata={'refused': str(e)})
'''

URI_ANALYSIS = '''
from urllib.parse import urlsplit
from services.sdk.mass import URIAnalysisClient
from services.sdk.mass import temporary_sample_file

class URIHostAnalysis(URIAnalysisClient):
    def __init__(self, config):
        super(URIHostAnalysis, self).__init__(config)

    def do_analysis(self, analysis_request):
        with self.temporary_sample_file() as file:
            with open(file) as fh:
                on_disk = fh.read()
        parts = urlsplit(self.sample_dict['uri'])
        self.submit_report(analysis_request['url'],
                           additional_metadata={'scheme': parts.scheme, 'on disk': on_disk},
                           json_report_objects={'uri parts': {'host': parts.hostname, 'path': parts.path}},
                           )
        self.relate_sample('domain', parts.hostname, description='host of the URI')
        self.submit_retrieved_by_sample_relation(self.sample_dict['url'], 'https://' + parts.hostname + '/next')
'''


def client(tmp_path: Path, name: str, code: str, manifest_extra: str = "") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "service.py").write_text(code)
    (folder / "service_manifest.yml").write_text(f"name: {name}\nversion: '1.0'\n{manifest_extra}")
    return folder


def related(run) -> list[tuple[SampleKind, str, Relation]]:
    return [(r.ref.kind, r.ref.name, r.relation) for r in run.related]


def test_domain_analysis_reports_and_relates(tmp_path):
    run = run_service_once(client(tmp_path, "labels", DOMAIN_ANALYSIS), b"WWW.Example.COM", file_type="network/domain")
    assert run.result.error is None
    assert run.result.metadata == {"labels": 3, "class": "Sample.DomainSample"}
    assert orjson.loads(run.object("label analysis")) == {"labels": ["www", "example", "com"]}  # canonical: lower case
    assert related(run) == [(SampleKind.IP, "192.0.2.10", Relation.CONTACTED_BY)]


def test_ip_analysis_reports_relates_and_refuses_a_bad_address(tmp_path):
    run = run_service_once(client(tmp_path, "scope", IP_ANALYSIS), b"10.1.2.3", file_type="network/ip")
    assert run.result.error is None
    assert run.result.metadata["private"] is True and run.result.metadata["version"] == 4
    assert "'999.1.1.1' is not an IPv4 or IPv6 address" in run.result.metadata["refused"]
    [obj] = run.produced
    assert obj.kind == ObjectKind.RAW_REPORT and obj.data == b"10.1.2.3"
    assert related(run) == [(SampleKind.DOMAIN, "ptr.example.net", Relation.RESOLVED_BY)]


def test_uri_analysis_reads_its_sample_and_relates_host_and_uri(tmp_path):
    run = run_service_once(client(tmp_path, "hosts", URI_ANALYSIS), b"HTTPS://Shop.Example.com/cart?x=1", file_type="uri/https")
    assert run.result.error is None
    assert run.result.metadata == {"scheme": "https", "on disk": "https://shop.example.com/cart?x=1"}
    assert orjson.loads(run.object("uri parts")) == {"host": "shop.example.com", "path": "/cart"}
    assert related(run) == [(SampleKind.DOMAIN, "shop.example.com", Relation.RESOLVED_BY),
                            (SampleKind.URI, "https://shop.example.com/next", Relation.RETRIEVED_BY)]
    assert run.related[0].description == "host of the URI"


@pytest.mark.parametrize(("code", "kind"), [(DOMAIN_ANALYSIS, SampleKind.DOMAIN), (IP_ANALYSIS, SampleKind.IP),
                                            (URI_ANALYSIS, SampleKind.URI)])
def test_a_client_takes_its_kind_without_the_manifest_saying_so(tmp_path, code, kind):
    m = load_service(client(tmp_path, "c", code)).manifest
    assert m.kinds == [kind]
    assert matching_types(m.accepts, m.rejects, m.kinds) == list(KIND_TYPES[kind])


def test_a_manifest_that_lists_another_kind_is_refused_at_load(tmp_path):
    with pytest.raises(ManifestError, match=r"a DomainAnalysisClient analyses domain samples only.*\[uri\]"):
        load_service(client(tmp_path, "c", DOMAIN_ANALYSIS, "kinds: [uri]\n"))
    assert load_service(client(tmp_path, "d", DOMAIN_ANALYSIS, "kinds: [domain]\n")).manifest.kinds == [SampleKind.DOMAIN]


def test_a_sample_of_another_kind_is_an_error_as_in_mass(tmp_path):
    """Only by hand (`run_service_once` ignores routing): MASS answers with an error report too."""
    run = run_service_once(client(tmp_path, "labels", DOMAIN_ANALYSIS), b"a file", file_type="text/plain")
    assert "No domain found to scan" in run.result.error.message
    assert run.related == [] and run.result.metadata == {}


def test_the_file_client_names_its_class_as_mass_does(tmp_path):
    code = '''
from services.sdk.mass import FileAnalysisClient

class Keys(FileAnalysisClient):
    def do_analysis(self, analysis_request):
        d = self.sample_dict
        self.submit_report(analysis_request['url'], additional_metadata={'class': d['_cls'], 'md5': d['md5sum']})
'''
    run = run_service_once(client(tmp_path, "keys", code), b"abc")
    assert run.result.metadata == {"class": "Sample.FileSample", "md5": "900150983cd24fb0d6963f7d28e17f72"}


def test_submit_report_takes_tags_and_analysis_date(tmp_path):
    code = '''
import datetime
from services.sdk.mass import FileAnalysisClient

class Tagged(FileAnalysisClient):
    def do_analysis(self, analysis_request):
        self.submit_report(analysis_request['url'], additional_metadata={'n': 1}, tags=['packed', 'upx'],
                           analysis_date=datetime.datetime(2031, 1, 2, 3, 4, 5))
'''
    run = run_service_once(client(tmp_path, "tagged", code), b"abc")
    assert run.result.error is None
    assert run.result.metadata == {"n": 1, "tags": "packed, upx", "analysis_date": "2031-01-02T03:04:05"}


def test_a_client_that_reports_only_metadata_is_not_shown_as_no_findings(tmp_path, capsys):
    from sluice.cli import main
    folder = client(tmp_path, "keys", '''
from services.sdk.mass import FileAnalysisClient

class OnlyMeta(FileAnalysisClient):
    def do_analysis(self, analysis_request):
        self.submit_report(analysis_request['url'], additional_metadata={'size': 3})
''')
    sample = tmp_path / "x.bin"
    sample.write_bytes(b"abc")
    assert main(["service", "test", str(folder), str(sample)]) == 0
    out = capsys.readouterr().out
    assert "metadata: size: 3" in out and "no findings" not in out
