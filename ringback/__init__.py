"""ringback: a self-hosted voice-call platform speaking Twilio's 2008-08-01 REST API."""

__version__ = "0.1.0"
