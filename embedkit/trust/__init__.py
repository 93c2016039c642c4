"""Trust: data contracts, quarantine, SLOs, metrics, status and catalog."""
