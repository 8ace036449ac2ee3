"""Core figures: image I/O speed through the isoline binary's reader."""
KEYS = ["core_info_seconds_128"]


def run(ctx):
    ct = ctx.shared / "openkbp" / "train" / "pt_1" / "ct.nii.gz"
    if not ct.exists():
        return {k: None for k in KEYS}
    # `isoline info` reads the whole volume (it reports min/max), so this is read time plus
    # process start.
    best = ctx.timed(lambda: ctx.run(ctx.isoline, "info", ct), repeat=5)
    return {"core_info_seconds_128": round(best, 4)}
