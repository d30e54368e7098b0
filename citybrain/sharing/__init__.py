"""The sharing service (issue 21, docs/SHARING.md): apply → approve → time-limited grant → use → expiry.

People have accounts (``accounts``), applications have tokens (``tokens``); a consumer applies for a
catalog resource and the providing department's approver decides (``applications``), on working-day clocks
(``workdays``, ``config``); an approval becomes a grant (``grants``) that is enforced on every read by
rewriting the caller's SQL (``enforce``) over the live published version (``reader``). ``api`` serves it
over HTTP, ``cli`` from the shell. Everything is kept in one SQLAlchemy database (``store``) and every step
is in the hash-chained audit log with its application or grant id.
"""
