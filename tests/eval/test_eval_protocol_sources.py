"""The protocol settings that make presets equal their upstream sources, each checked against an
independent computation: SCLIP's similarity averaging, area threshold, multi-name classes and
prompted background, and TagAlign's ImageNet-S large-image downsampling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tagalign_eval.datasets.classes import (
    builtin_class_list,
    builtin_prompt_map,
    classes_from_option,
    parse_class_lines,
    with_protocol_prompts,
)
from tagalign_eval.datasets.registry import get_benchmark
from tagalign_eval.errors import EvalError
from tagalign_eval.evaluate import protocol_classes
from tagalign_eval.inference import ClassEmbeddings, Segmenter, downsample_size, window_grid
from tagalign_eval.protocols import STUFF_BACKGROUND, resolve_protocol

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def embeddings(prompt_class, num_classes, background_from_protocol, dim=8, seed=3):
    g = torch.Generator().manual_seed(seed)
    owner = torch.tensor(prompt_class)
    return ClassEmbeddings(
        embeddings=F.normalize(torch.randn(len(owner), dim, generator=g), dim=-1),
        prompt_class=owner,
        num_classes=num_classes,
        background_index=0,
        background_from_protocol=background_from_protocol,
    )


def patch_dense(dim=8, patch=4, seed=5):
    """A dense function whose patch features depend on each crop's pixels (a fixed linear map of
    the mean colour of each patch), so overlapping windows see different features."""
    w = torch.randn(dim, 3, generator=torch.Generator().manual_seed(seed))

    def fn(crops):
        pooled = F.avg_pool2d(crops, patch, ceil_mode=True)
        return torch.einsum("ec,bchw->behw", w, pooled) + 0.3, None

    return fn


def test_similarity_averaging_is_sclips_order_and_differs_from_probability_averaging():
    text = embeddings([0, 0, 1, 2], 3, background_from_protocol=False)
    fn = patch_dense()
    rng = np.random.default_rng(0)
    image = (rng.random((24, 40, 3)) * 255).astype(np.uint8)
    settings = {"short_side": 24, "crop": 16, "stride": 8, "scale": 40.0, "bg_thresh": 0.0}
    sclip = resolve_protocol("sclip", None, settings)
    seg = Segmenter(fn, text, sclip, MEAN, STD)
    x = seg.prepare(image)
    # independent: SCLIP's loop over windows, raw similarities summed and counted
    h, w = x.shape[1:]
    total = torch.zeros(4, h, w)
    count = torch.zeros(1, h, w)
    for y1, y2, x1, x2 in window_grid(h, w, 16, 8):
        feats = F.normalize(fn(x[None, :, y1:y2, x1:x2])[0], dim=1)
        sim = torch.einsum("behw,me->bmhw", feats, text.embeddings)
        total[:, y1:y2, x1:x2] += F.interpolate(sim, (y2 - y1, x2 - x1), mode="bilinear")[0]
        count[:, y1:y2, x1:x2] += 1
    logits = F.interpolate((total / count)[None], image.shape[:2], mode="bilinear")[0]
    soft = torch.softmax(40.0 * logits, dim=0)
    expected = torch.stack([soft[:2].max(0).values, soft[2], soft[3]])
    got = seg.probabilities(seg.slide([x])[0], image.shape[:2])
    assert torch.allclose(got, expected, atol=1e-5)
    # softmax per window, then averaging (the mmseg/TagAlign order) is a different map
    per_window = resolve_protocol("sclip", None, {**settings, "window_average": "probabilities"})
    other = Segmenter(fn, text, per_window, MEAN, STD)
    prob_avg = other.probabilities(other.slide([x])[0], image.shape[:2])
    assert (prob_avg - expected).abs().max() > 1e-3
    assert seg.segment([image])[0].tolist() == expected.argmax(0).tolist()


def test_multi_name_class_is_the_max_of_its_names_after_one_softmax_over_all_names():
    text = embeddings([0, 0, 0, 1, 1, 2], 3, background_from_protocol=False)
    seg = Segmenter(patch_dense(), text, resolve_protocol("sclip"), MEAN, STD)
    sim = torch.rand(1, 6, 2, 3, generator=torch.Generator().manual_seed(1))
    soft = torch.softmax(40.0 * sim[0], dim=0)  # SCLIP: softmax over all queries ...
    one_hot = F.one_hot(torch.tensor([0, 0, 0, 1, 1, 2])).T.view(3, 6, 1, 1).float()
    expected = (soft[None] * one_hot).max(1).values  # ... then each class's best query
    assert torch.allclose(seg._class_probs(sim)[0], expected, atol=1e-6)


def sclip_area_rule(probs, area_thd, prob_thd):
    """SCLIP's postprocess_result on class probabilities [K,H,W] (class 0 a prompted background),
    written with numpy: area of each foreground class under the argmax, suppression, threshold."""
    p = probs.numpy().copy()
    arg = p.argmax(0)
    area = np.array([(arg == c).sum() for c in range(p.shape[0])])[1:]
    keep = area > area_thd * area.sum()
    p[1:] *= keep[:, None, None]
    label = p.argmax(0)
    label[p.max(0) < prob_thd] = 0
    return label


def test_area_threshold_matches_sclip_on_a_hand_made_map():
    # 4 classes (0 = prompted background) on 4 x 5 pixels: class 3 wins 2 of 16 foreground pixels
    probs = torch.full((4, 4, 5), 0.05)
    probs[1, :2, :] = 0.7  # 10 pixels
    probs[2, 2:, :2] = 0.6  # 4 pixels
    probs[3, 2:, 2:3] = 0.5  # 2 pixels -> 2/16 = 12.5% > 10%: kept at 0.1, gone at 0.15
    probs[0, 2:, 3:] = 0.8  # 4 background pixels, not counted
    probs[2, 2:, 2:3] = 0.3  # runner-up where class 3 is suppressed
    text = embeddings([0, 1, 2, 3], 4, background_from_protocol=False)
    for area in (0.1, 0.15, 0.3):
        p = resolve_protocol("sclip", "voc", {"area_thresh": area, "bg_thresh": 0.2})
        got = Segmenter(patch_dense(), text, p, MEAN, STD).labels(probs, (4, 5))
        assert got.tolist() == sclip_area_rule(probs, area, 0.2).tolist()
    p = resolve_protocol("sclip", "voc", {"area_thresh": 0.15, "bg_thresh": 0.2})
    got = Segmenter(patch_dense(), text, p, MEAN, STD).labels(probs, (4, 5))
    assert (got == 3).sum() == 0 and (got[2:, 2] == 2).all()  # the rule did act
    off = resolve_protocol("sclip", "ade20k", {"bg_thresh": 0.2})
    assert off.area_thresh == 0.0
    got = Segmenter(patch_dense(), text, off, MEAN, STD).labels(probs, (4, 5))
    assert (got == 3).sum() == 2


def test_area_threshold_with_a_protocol_background():
    """No background channel: the foreground shares are those of the argmax over the classes."""
    probs = torch.full((2, 1, 10), 0.1)
    probs[0, 0, :9] = 0.9
    probs[1, 0, 9] = 0.9  # class 2 holds 1 of 10 pixels = 10%: suppressed at area 0.1
    text = embeddings([0, 1], 3, background_from_protocol=True)
    p = resolve_protocol("sclip", "voc", {"area_thresh": 0.1, "bg_thresh": 0.5})
    got = Segmenter(patch_dense(), text, p, MEAN, STD).labels(probs, (1, 10))
    assert got.tolist() == [[1] * 9 + [0]]  # its pixel falls below the threshold: background


def test_downsample_rule_of_tagalign_imagenet_s():
    assert downsample_size(1500, 1200, 1000) == (1000, 800)
    assert downsample_size(1200, 1500, 1000) == (800, 1000)
    assert downsample_size(1001, 1000, 1000) == (1000, 999)  # int() truncates 999.0009...
    assert downsample_size(1001, 999, 1000) is None  # 999999 pixels: kept
    assert downsample_size(1000, 1000, 1000) is None  # exactly 1000**2 pixels: kept
    assert downsample_size(3000, 200, 1000) is None  # long but small: kept
    assert downsample_size(1500, 1200, 0) is None


def test_large_image_is_predicted_downsampled_and_mapped_back_nearest():
    text = embeddings([0, 1, 2], 4, background_from_protocol=True)
    settings = {"short_side": 40, "crop": 64, "stride": 64, "bg_thresh": 0.3}
    p = resolve_protocol("tagalign-v3", "imagenet-s", settings)
    assert p.downsample_large == 1000
    seg = Segmenter(patch_dense(), text, p, MEAN, STD)
    rng = np.random.default_rng(2)
    small_img = (rng.random((30, 24, 3)) * 255).astype(np.uint8)
    image = np.kron(small_img, np.ones((50, 50, 1), dtype=np.uint8))  # 1500 x 1200
    got = seg.segment([image])[0]
    assert tuple(got.shape) == (1500, 1200)
    x = seg.prepare(image, (1000, 800))
    small = seg.labels(seg.probabilities(seg.slide([x])[0], (1000, 800)), (1000, 800)).numpy()
    rows = np.floor(np.arange(1500) * 1000 / 1500).astype(int)
    cols = np.floor(np.arange(1200) * 800 / 1200).astype(int)
    assert np.array_equal(got.numpy(), small[rows][:, cols])
    plain = resolve_protocol("tagalign-v3", "voc", settings)
    assert tuple(Segmenter(patch_dense(), text, plain, MEAN, STD).prepare(image).shape) == (
        3,
        50,
        40,
    )
    assert tuple(x.shape) == (3, 50, 40)  # 1000 x 800 -> short side 40


def test_prompted_background_and_prompt_maps_keep_the_reported_names():
    voc = builtin_class_list("voc")
    scored = protocol_classes(voc, resolve_protocol("sclip", "voc"))
    assert scored.names == voc.names
    assert not scored.background_from_protocol and scored.background_prompted
    assert scored.synonyms[0] == STUFF_BACKGROUND
    assert scored.synonyms[voc.names.index("boat")] == ("boat", "ship")
    assert scored.synonyms[voc.names.index("tvmonitor")][0] == "tv monitor"
    assert [n for i, n in scored.prompted if i == 0] == list(STUFF_BACKGROUND)
    context = protocol_classes(builtin_class_list("context"), resolve_protocol("sclip", "context"))
    assert context.synonyms[0] == ("background",) and not context.background_from_protocol
    # tagalign presets leave the benchmark's list as it is
    assert protocol_classes(voc, resolve_protocol("tagalign-v3", "voc")) is voc
    # a class the user gave synonyms keeps them
    own = classes_from_option("background,boat;canoe,person")
    mapped = with_protocol_prompts(own, builtin_prompt_map("sclip_voc"), ())
    assert mapped.synonyms[1] == ("boat", "canoe") and mapped.synonyms[2][0] == "person"
    assert mapped.background_from_protocol and mapped.names == own.names
    with pytest.raises(EvalError, match="no builtin prompt map"):
        builtin_prompt_map("nope")


def test_label_lines_and_the_imagenet_s919_list():
    classes = parse_class_lines(["background: background", "boat: ship; vessel", "cat"], "t")
    assert classes.names == ["background", "boat", "cat"]
    assert classes.synonyms == (("background",), ("ship", "vessel"), ("cat",))
    assert not classes.background_from_protocol  # `background:` is prompted
    with pytest.raises(EvalError, match="before ':'"):
        parse_class_lines(["boat:"], "t")
    # every prompt map names classes of the benchmarks it serves (a typo would silently do nothing)
    for stem, benchmarks in (
        ("sclip_voc", ("voc", "voc20")),
        ("sclip_coco_object", ("coco-object",)),
    ):
        for benchmark in benchmarks:
            assert set(builtin_prompt_map(stem).names) <= set(
                get_benchmark(benchmark).class_list().names
            )
    assert builtin_class_list("voc_synonyms").names == builtin_class_list("voc").names
    spec = get_benchmark("imagenet-s919")
    s919 = spec.class_list()
    assert len(s919) == 920 and len(set(s919.names)) == 920
    assert s919.background_from_protocol and spec.protocol_family == "imagenet-s919"
    assert s919.synonyms[s919.names.index("cardigan (2)")] == ("cardigan",)


def test_presets_normalise_as_their_sources_whatever_the_model_says():
    """sclip: CLIP's mean/std (SCLIP's `SegDataPreProcessor`); tagalign-*: ImageNet's, the
    `img_norm_cfg` of every dataset config of Qinying-Liu/TagAlign (main 9b212cc, dev 70914ae),
    e.g. `segmentation/configs/_base_/datasets/pascal_voc12.py`, used as given by the model
    (`models/tagalign/tagalign.py` `generate_masks` feeds the image straight to the CLIP visual
    encoder; `us/misc.py` notes ImageNet statistics are kept from GroupViT)."""
    from open_clip.constants import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        OPENAI_DATASET_MEAN,
        OPENAI_DATASET_STD,
    )

    text = embeddings([0, 1], 3, background_from_protocol=True)
    image = np.full((4, 4, 3), 200, dtype=np.uint8)
    for name, overrides, (mean, std) in [
        ("sclip", {}, (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)),
        ("tagalign-v1", {}, (IMAGENET_MEAN, IMAGENET_STD)),
        ("tagalign-v3", {}, (IMAGENET_MEAN, IMAGENET_STD)),
        ("tagalign-v3", {"normalize": "model"}, (MEAN, STD)),
    ]:
        p = resolve_protocol(name, None, {"short_side": 4, **overrides})
        x = Segmenter(patch_dense(), text, p, MEAN, STD).prepare(image)
        expected = (200 / 255 - torch.tensor(mean)) / torch.tensor(std)
        assert torch.allclose(x[:, 0, 0], expected.float(), atol=1e-6), (name, overrides)
    # SCLIP's SegDataPreProcessor values (0-255 scale) are CLIP's
    assert np.allclose(np.array(OPENAI_DATASET_MEAN) * 255, [122.771, 116.746, 104.094], atol=1e-3)
    assert np.allclose(np.array(OPENAI_DATASET_STD) * 255, [68.501, 66.632, 70.323], atol=1e-3)
    # TagAlign's img_norm_cfg (0-255 scale) is ImageNet's
    assert np.allclose(np.array(IMAGENET_MEAN) * 255, [123.675, 116.28, 103.53], atol=1e-3)
    assert np.allclose(np.array(IMAGENET_STD) * 255, [58.395, 57.12, 57.375], atol=1e-3)
    families = ("voc", "context", "coco-object", "voc20", "context59", "coco-stuff",
                "cityscapes", "ade20k", "imagenet-s", "imagenet-s300", "imagenet-s919")  # fmt: skip
    for family in families:
        for name in ("tagalign-v1", "tagalign-v3"):
            assert resolve_protocol(name, family).normalize == "imagenet", (name, family)


def test_every_new_setting_is_in_results_json_and_benchmarks_run(tmp_path, tiny_weights):
    """End to end through `run_suite`: SCLIP's VOC protocol (prompted background, prompt map,
    area threshold, similarity averaging) and the ImageNet-S919 benchmark under tagalign-v3."""
    from eval_synthetic import write_benchmark
    from tagalign_eval import ModelSpec, SuiteRequest, run_suite

    for name in ("voc", "imagenet-s919"):
        write_benchmark(get_benchmark(name), tmp_path, n=2, size=(48, 40))
    model = ModelSpec(baseline="surgery", model_name="tagalign-tiny-ViT", pretrained=tiny_weights)
    fast = {"short_side": 48, "crop": 32, "stride": 16}
    runs = {}
    for protocol, benchmark in (("sclip", "voc"), ("tagalign-v3", "imagenet-s919")):
        request = SuiteRequest(
            [benchmark], tmp_path, model, protocol, fast, workers=0, progress=False
        )
        (result,) = run_suite(request).results
        runs[benchmark] = result.to_dict()
    voc = runs["voc"]
    assert voc["classes"]["names"] == builtin_class_list("voc").names
    expected = resolve_protocol("sclip", "voc", fast).to_dict()
    assert voc["protocol"] == expected
    assert voc["protocol"]["background_prompts"] == list(STUFF_BACKGROUND)
    assert voc["protocol"]["window_average"] == "similarities"
    assert (voc["protocol"]["area_thresh"], voc["protocol"]["normalize"]) == (0.1, "clip")
    assert voc["protocol"]["class_prompts"] == "sclip_voc"
    assert len(voc["protocol"]["templates"]) == 80
    s919 = runs["imagenet-s919"]
    assert s919["classes"]["count"] == 920 and s919["protocol"]["downsample_large"] == 1000
    assert s919["metrics"]["mIoU"] is not None
