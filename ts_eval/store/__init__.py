"""The run directory: how it is written (`rundir`), locked (`lock`) and read back whole (`reader`)."""

from ts_eval.store.files import (IMAGE_SUFFIXES, atomic_file, encode_image, environment, fingerprint, json_bytes,
                                 json_line, jsonl_bytes, now, png_bytes, read_jsonl, sha256_bytes, sha256_file,
                                 write_atomic, write_json, write_jsonl)
from ts_eval.store.lock import RunLock
from ts_eval.store.rundir import (CANONICAL, DETECTIONS, FORMAT, IMAGES, MANIFEST, PROMPTS, SAMPLES, SUMMARY,
                                  RunDir)

__all__ = ["IMAGE_SUFFIXES", "atomic_file", "encode_image", "environment", "fingerprint", "json_bytes", "json_line",
           "jsonl_bytes", "now",
           "png_bytes", "read_jsonl", "sha256_bytes", "sha256_file", "write_atomic", "write_json", "write_jsonl",
           "RunLock", "CANONICAL", "DETECTIONS", "FORMAT", "IMAGES", "MANIFEST", "PROMPTS", "SAMPLES", "SUMMARY",
           "RunDir"]
