"""`navigator export`: a trained checkpoint to a self-contained bundle for the onboard runtime (policy.onnx, the
single-step graph with its weights inside, and policy.json, its manifest), verified against PyTorch on whole
closed-loop episodes before it is written, optionally quantised to int8 with the cost measured.

`graph` exports and checks the ONNX graph, `manifest` builds policy.json, `verify` flies and replays episodes,
`quantize` makes the int8 graph, `pipeline` joins them and writes the folder atomically. Reading a bundle (torch-free)
is `navigator.onboard.bundle`.
"""
