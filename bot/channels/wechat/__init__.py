"""WeChat official account (公众号): callbacks, the API client, menus."""
