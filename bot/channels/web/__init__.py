"""propdesk's own pages: the local web chat, the staff console and the mobile staff page."""
