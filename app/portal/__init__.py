"""The web portal (`din serve`): contributors deliver and check their files, report authors find and
download the published tables. Server-rendered pages (FastAPI, Jinja2), no JavaScript build step.

One module per concern: `auth` (tokens, sign-in cookies, CSRF), `uploads` (streamed uploads, the
check, the mapping form, submitting to the inbox), `deliveries` (an organisation's own deliveries,
their problems with values as typed), `catalog` (the published tables), `downloads` (CSV, XLSX,
Parquet, formula-safe) and `pages` (the routes and error pages that tie them together).
"""
