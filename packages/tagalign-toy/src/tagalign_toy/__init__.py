"""The toy world: ToyShapes, its toy CLIP, its benchmarks and `tagalign-demo`.

The one place where TagAlign's claims can be run end to end without real CLIP weights, datasets or
GPUs. It sits above the three toolkit packages and drives them through their real interfaces:

- `generator`: the deterministic synthetic world (images, captions, masks, gold tags);
- `toy_clip`, `pretrain`, `zero_shot`: the toy CLIP (an open_clip `local-dir:` folder), how it is
  pretrained from scratch, and how well it knows the world globally;
- `benchmark`: the `toyshapes` and `toyshapes-attr` benchmarks, registered with tagalign-eval
  through its `tagalign_eval.benchmarks` entry point;
- `demo`: `tagalign-demo`, the whole pipeline through the real CLIs.
"""
