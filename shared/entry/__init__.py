"""Entry points, the top layer: what the function app (app_wiring), the `chatft` command (cli/) and the
offline runner (offline/) start from. They import everything below; nothing below imports them."""
