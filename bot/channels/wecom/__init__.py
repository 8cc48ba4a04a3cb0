"""WeCom (企业微信) group robots for staff cards."""
