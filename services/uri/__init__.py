"""URI: the parts of a URI sample, what is deceptive about them, and its host as a related sample."""
