"""Prepares a standard TFDS dataset (`mnist`, `fashion_mnist`) from a local copy of its original distribution files,
with no network access: the same splits, examples and order as a TFDS download, built by TFDS's own code.

Route. TFDS's download manager resolves each URL of a builder, before downloading anything, first from its manual
directory (`DownloadConfig(manual_dir=...)`: a file under the name registered in the dataset's checksums, which
TFDS hashes and checks against the registered size and sha256, raising NonMatchingChecksumError otherwise), then
from its download cache (`download_dir/<dataset>/<get_dl_fname(url, registered sha256)>` with an `.INFO` file next
to it, trusted as registered). `prepare` checks every file first (below), links the checked files into a temporary
manual or download directory, and runs `builder.download_and_prepare(download_dir=..., download_config=
DownloadConfig(manual_dir=..., try_download_gcs=False))`: every URL resolves locally, so nothing is downloaded, and
TFDS extracts and parses the files with its own code (mnist.py's idx readers), writing the dataset into an
`incomplete.*` directory that it renames when done. On any failure no dataset and no temporary file remain.

Checks, before anything is prepared. A file is accepted when
  - its size and sha256 are those TFDS registered for it (`builder.url_infos`, from tensorflow_datasets/url_checksums);
    such files go through the manual directory, where TFDS checks them again itself; or
  - (unless `registered_only`) it is a gzip file whose decompressed bytes have the sha256 of the original file's
    decompressed bytes, pinned in CONTENTS_SHA256 below: a re-compressed copy (mirrors and archives often re-gzip;
    the copies of MNIST and of the Fashion-MNIST images this project was tested with are such copies: new gzip
    headers and deflate streams, the same bytes inside). TFDS reads only the decompressed bytes, so the examples are
    those of a download. These files go into the download cache under their registered names.
Anything else is refused, naming the files expected, where, which are missing and which have the wrong checksum.
The pinned sha256s are of the decompressed files of the archives that match TFDS's registered checksums (the same
values are published independently for the LeCun/CVDF MNIST and the Zalando Fashion-MNIST files).

Adding a dataset whose downloads are plain files (one URL each): an entry in CONTENTS_SHA256, empty ({}) to accept
only byte-identical copies. Archives holding several files (a tar of a whole dataset) would need their own check.
"""
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib

from etils import epath
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import resource as tfds_resource

from gan_jax.errors import UserError, first_line

# sha256 of each original file's decompressed bytes (the idx files inside the .gz TFDS registered).
CONTENTS_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
NAMES = tuple(CONTENTS_SHA256)

REGISTERED = "TFDS's registered sha256"                       # How a file was accepted (values of `verify`).
CONTENTS = "sha256 of its decompressed contents (a re-compressed copy)"


def _sha256(path, opener=open):
  digest = hashlib.sha256()
  with opener(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _builder(name, data_dir=None):
  if name not in CONTENTS_SHA256:
    raise UserError(f"cannot prepare {name!r} from local files; supported: {', '.join(NAMES)}")
  return tfds.builder(name, data_dir=data_dir)


def expected_files(name):
  """{file name: (url, registered tfds UrlInfo (size, sha256))}: the files TFDS downloads for dataset `name`."""
  return {info.filename: (url, info) for url, info in sorted(_builder(name).url_infos.items())}


def verify(name, source_dir, registered_only=False):
  """{file name: how it was accepted (REGISTERED or CONTENTS)} for the files of `name` in `source_dir`; raises
  UserError naming the files expected, the missing ones and those with a wrong checksum."""
  expected = expected_files(name)
  if not os.path.isdir(source_dir):
    raise UserError(f"directory {source_dir} does not exist; it should hold the original files of {name}: "
                    f"{', '.join(expected)}")
  accepted, missing, wrong, recompressed = {}, [], [], []
  for filename, (_, info) in expected.items():
    path = os.path.join(source_dir, filename)
    if not os.path.isfile(path):
      missing.append(filename)
      continue
    sha256 = _sha256(path)
    if os.path.getsize(path) == int(info.size) and sha256 == info.checksum:
      accepted[filename] = REGISTERED
      continue
    try:
      contents_ok = _sha256(path, gzip.open) == CONTENTS_SHA256[name].get(filename)
    except (OSError, EOFError, zlib.error):  # Not gzip, truncated, or a corrupt deflate stream.
      contents_ok = False
    if contents_ok and not registered_only:
      accepted[filename] = CONTENTS
    elif contents_ok:
      recompressed.append(filename)
    else:
      wrong.append(f"{filename} (sha256 {sha256[:12]}..., TFDS registered {info.checksum[:12]}...)")
  if missing or wrong or recompressed:
    problems = [f"{what}: {', '.join(files)}" for what, files in (
        ("missing", missing), ("wrong checksum", wrong),
        ("re-compressed copies of the originals, refused with registered_only", recompressed)) if files]
    raise UserError(f"expected {', '.join(expected)} in {source_dir} (the original files of {name}); "
                    f"{'; '.join(problems)}")
  return accepted


def _stage(name, source_dir, accepted, staging_dir):
  """Links the accepted files where TFDS's download manager looks before downloading: (download_dir, manual_dir)."""
  download_dir, manual_dir = os.path.join(staging_dir, "downloads"), os.path.join(staging_dir, "manual")
  os.makedirs(manual_dir)
  for filename, (url, info) in expected_files(name).items():
    source = os.path.abspath(os.path.join(source_dir, filename))
    if accepted[filename] == REGISTERED:
      os.symlink(source, os.path.join(manual_dir, filename))   # TFDS hashes it against the registered sha256.
    else:  # The cached download of `url` as TFDS names it; TFDS trusts the cache (we checked the contents).
      cached = os.path.join(download_dir, name, tfds_resource.get_dl_fname(url, info.checksum))
      os.makedirs(os.path.dirname(cached), exist_ok=True)
      os.symlink(source, cached)
      tfds_resource.write_info_file(url=url, path=epath.Path(cached), dataset_name=name,
                                    original_fname=filename, url_info=info)
  return download_dir, manual_dir


def prepare(name, source_dir, data_dir=None, registered_only=False):
  """The TFDS builder of `name` (mnist, fashion_mnist) in `data_dir`, prepared from the original files in
  `source_dir` after they pass `verify`, with no network access; a dataset already prepared there is kept."""
  accepted = verify(name, source_dir, registered_only)
  builder = _builder(name, data_dir)
  if builder.is_prepared():
    return builder
  dataset_root = os.path.join(os.fspath(builder.data_dir_root), name)   # data_dir/name/version
  existed = os.path.exists(dataset_root)
  staging_dir = tempfile.mkdtemp(prefix=f"gan_jax_{name}_local_copy_")
  try:
    download_dir, manual_dir = _stage(name, source_dir, accepted, staging_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
    builder.download_and_prepare(download_dir=download_dir, download_config=config)
  except Exception as e:  # TFDS's own checksum check (a file changed meanwhile), disk errors.
    _remove_partial(dataset_root, existed)
    raise UserError(f"could not prepare {name} from {source_dir}: {first_line(e)}") from None
  except BaseException:  # KeyboardInterrupt, SystemExit: clean up, then let them through.
    _remove_partial(dataset_root, existed)
    raise
  finally:
    shutil.rmtree(staging_dir, ignore_errors=True)
  return _builder(name, data_dir)


def _remove_partial(dataset_root, existed):
  """Removes what a failed preparation left: the dataset's directory when it is new, else its incomplete.* parts."""
  if not existed:
    shutil.rmtree(dataset_root, ignore_errors=True)
    return
  for parent, dirs, _ in os.walk(dataset_root):
    for d in [d for d in dirs if "incomplete" in d]:
      shutil.rmtree(os.path.join(parent, d), ignore_errors=True)
      dirs.remove(d)
