"""The README and docs/ stay true to the code, without training anything.

Every `python -m gan_jax.<module> ...`, `python scripts/<x>.py ...` and `scripts/launch_local.sh N M ...` command
in a ```bash block of README.md or docs/*.md must name a module or script that exists, flags that command
defines, experiment files whose get_config accepts the given argument, and `--config.X=...` overrides (and sweep
`--grid X=...` keys) that name keys of that experiment's config. Every relative link must point to a file of the
repository and, with a #fragment, to a heading there. References to README sections elsewhere in the repository
(`README, "Accelerators"`) must name a heading of the README, and CI must run the README's test command.
"""
import functools
import glob
import importlib.util  # noqa: F401  (config.load_experiment uses importlib.util)
import os
import re

from ml_collections import config_dict

from gan_jax import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
PAGES = [README] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
# Sub-configs whose keys depend on the model, optimizer or objective: only their first component is checked.
OPEN_ENDED = ("model", "optimizer", "objective_kwargs")


def read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def rel(path):
  return os.path.relpath(path, REPO)


# --- Markdown ----------------------------------------------------------------------------------------------------


def bash_blocks(text):
  return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def without_code(text):
  """The text with fenced blocks and inline code removed: what GitHub renders as prose, links and headings."""
  text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  return re.sub(r"`[^`\n]*`", "", text)


def slug(heading):
  """GitHub's anchor for a heading: lower case, punctuation dropped (inline code's backticks too), spaces to -."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path):
  """The text of every heading of a markdown file (not the `#` comments of its code blocks)."""
  return re.findall(r"^#{1,6} +(.+?) *#*$", re.sub(r"^```.*?^```", "", read(path), flags=re.S | re.M), re.M)


def anchors(path):
  seen, result = {}, set()
  for heading in headings(path):
    base = slug(heading)
    result.add(base if base not in seen else f"{base}-{seen[base]}")
    seen[base] = seen.get(base, 0) + 1
  return result


# --- Commands ----------------------------------------------------------------------------------------------------

_COMMAND = re.compile(r"(?:python -m gan_jax\.(?P<module>\w+)|python (?P<script>scripts/\w+\.py)"
                      r"|(?P<launcher>scripts/\w+\.sh) +\d+ +\d+)(?P<args>[^\n]*)")


def commands(text):
  """(program, [arguments]) of every command in the bash blocks of `text`; program is `gan_jax.<module>`,
  `scripts/<x>.py`, or `scripts/<x>.sh` (whose arguments go to gan_jax.main). A `#` comment ends a line;
  `&&`, `|`, `;` separate commands; `>` or a quote ends one."""
  found = []
  for block in bash_blocks(text):
    for line in block.replace("\\\n", " ").splitlines():
      for part in re.split(r"&&|\|\||[|;]", re.sub(r"(^|\s)#.*", "", line)):
        for match in _COMMAND.finditer(part):
          args = re.split(r"[>\"']", match.group("args"))[0].split()
          program = (f"gan_jax.{match.group('module')}" if match.group("module")
                     else match.group("script") or match.group("launcher"))
          found.append((program, args))
  return found


def source_of(program):
  if program.startswith("gan_jax."):
    return os.path.join(REPO, "gan_jax", program.split(".", 1)[1] + ".py")
  return os.path.join(REPO, program)


@functools.cache
def defined_flags(program):
  """The flags a program defines (absl's DEFINE_*("name", ...) or argparse's add_argument("--name", ...)), with
  absl's --noNAME for booleans."""
  if program.endswith(".sh"):
    return defined_flags("gan_jax.main")
  text = read(source_of(program))
  absl = re.findall(r"DEFINE_(\w+)\(\s*\"(\w+)\"", text)
  names = {name for _, name in absl} | set(re.findall(r"add_argument\(\s*\"--(\w+)\"", text))
  return names | {f"no{name}" for kind, name in absl if kind in ("bool", "boolean")}


@functools.cache
def experiment(spec):
  """The ConfigDict of `--config=experiments/<file>.py[:arg]`."""
  path, _, arg = spec.partition(":")
  return config_lib.load_experiment(os.path.join(REPO, path), arg or None)


def key_problem(config, dotted):
  """Why `dotted` is not a key of `config` (None when it is)."""
  parts = dotted.split(".")
  if parts[0] in OPEN_ENDED:
    parts = parts[:1]
  node = config
  for i, part in enumerate(parts):
    if not isinstance(node, config_dict.ConfigDict) or part not in node:
      return f"config has no key {'.'.join(parts[:i + 1])!r}"
    node = node[part]
  return None


def command_problems(program, args):
  """What is wrong with one command, as a list of messages."""
  if not os.path.isfile(source_of(program)):
    return [f"{program} does not exist"]
  problems, overrides, config = [], [], None  # overrides: (how the command names the key, the key)
  args = list(args)
  for i, arg in enumerate(args):
    if not arg.startswith("--"):
      continue
    name, eq, value = arg[2:].partition("=")
    if name.startswith("config."):
      overrides.append((f"--{name}", name[len("config."):]))
    elif name not in defined_flags(program):
      problems.append(f"{program} defines no flag --{name}")
    elif name == "config":
      try:
        config = experiment(value)
      except Exception as e:  # pylint: disable=broad-except  (a missing file, a bad argument, ...)
        problems.append(f"--config={value}: {type(e).__name__}: {e}")
    elif name == "grid" and program == "gan_jax.sweep":  # --grid key=v1,v2 (or --grid=key=v1,v2)
      key = (value if eq else args[i + 1] if i + 1 < len(args) else "").partition("=")[0]
      overrides.append((f"--grid {key}", key))
  if program == "gan_jax.latent":
    commands_defined = re.search(r"^COMMANDS = \((.*?)\)", read(source_of(program)), re.M | re.S).group(1)
    positional = [a for a in args if not a.startswith("-")]
    if not positional or f'"{positional[0]}"' not in commands_defined:
      problems.append(f"gan_jax.latent needs one of its commands ({commands_defined}), got {positional}")
  if overrides and config is None and not problems:
    problems.append(f"{', '.join(label for label, _ in overrides)} without a --config to check them against")
  for label, key in overrides if config is not None else ():
    problem = key_problem(config, key)
    if problem:
      problems.append(f"{label}: {problem}")
  return problems


# --- Tests -------------------------------------------------------------------------------------------------------


def test_the_readme_has_commands_to_check():
  programs = {program for program, _ in commands(read(README))}
  assert {"gan_jax.main", "gan_jax.sample", "gan_jax.evaluate", "gan_jax.sweep", "gan_jax.latent"} <= programs


def test_every_documented_command_names_what_exists():
  problems = [f"{rel(page)}: {program} {' '.join(args)}\n    {problem}"
              for page in PAGES for program, args in commands(read(page))
              for problem in command_problems(program, args)]
  assert not problems, "\n".join(problems)


def test_every_relative_link_and_anchor_resolves():
  problems = []
  for page in PAGES:
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(read(page))):
      if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
        continue
      path, _, fragment = target.partition("#")
      resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
      if not os.path.exists(resolved):
        problems.append(f"{rel(page)}: link {target} -> {rel(resolved)} does not exist")
      elif fragment and resolved.endswith(".md") and fragment not in anchors(resolved):
        problems.append(f"{rel(page)}: link {target}: no heading #{fragment} in {rel(resolved)}")
  assert not problems, "\n".join(problems)


def test_readme_sections_named_elsewhere_exist_and_ci_runs_the_readme_test_command():
  sections = {heading.replace("`", "") for heading in headings(README)}
  sources = [os.path.join(REPO, p) for p in ("requirements.txt", "requirements-dev.txt", ".ci/run")]
  sources += glob.glob(os.path.join(REPO, "gan_jax", "**", "*.py"), recursive=True)
  sources += glob.glob(os.path.join(REPO, "scripts", "*"))
  missing = [f"{rel(path)} names README section {name!r}" for path in sources if os.path.isfile(path)
             for name in re.findall(r"README, \"([^\"]+)\"", read(path)) if name not in sections]
  assert not missing, "\n".join(missing)
  ci_command = [line for line in read(os.path.join(REPO, ".ci", "run")).splitlines() if "pytest" in line]
  assert ci_command and all(line in read(README) for line in ci_command), ci_command
