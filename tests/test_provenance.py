"""Citations stay inside the repository: configs cite docs/provenance.md entries."""

import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Built from pieces so this file does not mention them itself.
OUTSIDE = ("seed_code" + "_facts", "/work/" + "shared")


def _tracked_text_files() -> list[pathlib.Path]:
  out = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  return [ROOT / p for p in out if p.endswith((".py", ".md", ".toml", ".txt", ".csv"))]


def test_no_file_cites_notes_outside_the_repository():
  bad = [
    f"{p.relative_to(ROOT)}: {word}"
    for p in _tracked_text_files()
    if p.is_file()
    for word in OUTSIDE
    if word in p.read_text(errors="replace")
  ]
  assert not bad, bad


def test_cited_provenance_entries_exist():
  doc = (ROOT / "docs" / "provenance.md").read_text()
  entries = set(re.findall(r"^### (F\d+)\.", doc, re.M))
  cited = set()
  for p in _tracked_text_files():
    if p.is_file() and p.suffix == ".py":
      for refs in re.findall(
        r"provenance\.md(?:``)?((?:,? F\d+(?:-F\d+)?)+)", p.read_text()
      ):
        for a, b in re.findall(r"F(\d+)(?:-F(\d+))?", refs):
          cited |= {f"F{i}" for i in range(int(a), int(b or a) + 1)}
  assert cited, "no config cites docs/provenance.md"
  assert cited <= entries, sorted(cited - entries)
