"""User-facing errors: bad config, data, checkpoint or command line.

Raise `UserError` with one sentence that names the bad value and what is allowed; the entry points print it
as `gan_jax: error: ...` and exit with status 2 (a traceback only with --verbose).
"""
import sys


class UserError(Exception):
  """An error caused by the user's input, reported as one line without a traceback."""


EXIT_CODE = 2


def first_line(e: BaseException, limit: int = 300) -> str:
  """The first line of an exception's message (its type's name when empty), at most `limit` characters: what
  a one-line error quotes of a library's multi-line exception."""
  line = (str(e).strip().splitlines() or [type(e).__name__])[0]
  return line if len(line) <= limit else line[:limit - 3].rstrip() + "..."


def exit_with(message) -> None:
  """Prints `gan_jax: error: <message>` on stderr and exits with status 2."""
  text = " ".join(str(message).split())  # One line, whatever the exception text held.
  print(f"gan_jax: error: {text}", file=sys.stderr)
  sys.exit(EXIT_CODE)
