"""propdesk's own pages: the local web chat, the staff pane and the mobile staff page."""
