"""Every output of a run is built from one document (reports.document.build)."""
