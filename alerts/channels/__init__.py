"""Notification channels: webhook, e-mail, DingTalk and WeCom robots.

- ``render``: alerts → ``RenderedMessage`` (title, text, markdown, HTML); pure.
- ``targets``: where a recipient's messages go, one model per channel; pure configuration.
- ``sender.ChannelSender.send(target, message, idempotency_key) -> DeliveryResult``: the one
  entry point that delivers, with retries (``delivery``).
- ``webhook``, ``mail``, ``dingtalk``, ``wecom``: each channel's wire format and sender.

Nothing is re-exported here, so importing the pure modules (as ``alerts.routing`` does) does
not import the HTTP and SMTP clients.
"""
