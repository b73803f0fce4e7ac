"""Drivers that run external tools or write results: synthesis (synth), the synthesis benchmark (bench),
design-space exploration (explore) and the HTML report (report). They read the models in hls_models/."""
