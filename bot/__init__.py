"""propdesk application: services, classifier, channel adapters, web server and CLI."""
