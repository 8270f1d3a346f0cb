import logging

from grood.pipeline import setup_logging
from grood.shards import merge_npz_rows

setup_logging(snakemake.log[0])
# an .npy has no attrs: the merge's provenance (which shards, which rows) goes to the job's log
info = merge_npz_rows(list(snakemake.input.shards), snakemake.output.npy)
logging.getLogger("grood").info("provenance: %s", info)
