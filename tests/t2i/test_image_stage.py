"""The image stage through `t2i fit` (tiny config), its checkpoint, sample media and config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_testing import single_object_items, two_object_items

from ganforge.checkpoint import load_checkpoint
from t2i.cli import main
from t2i.data.coco import collate_layouts
from t2i.image_stage import ImageGAN
from t2i.pipeline import TextToImage

CONFIG = Path(__file__).resolve().parents[2] / "configs/t2i/shapes_image_tiny.yaml"


def tiny_overrides(tmp_path: Path) -> list[str]:
    return [
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--trainer.max_steps=4",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--model.init_args.clip_path=null",
        "--model.init_args.text_width=64",
        "--model.init_args.text_layers=1",
        f"--data.init_args.data_dir={tmp_path / 'shapes'}",
        "--data.init_args.batch_size=4",
        "--data.init_args.shapes.train=12",
        "--data.init_args.shapes.val=4",
    ]


def test_fit_writes_a_checkpoint_textoimage_loads(tmp_path: Path) -> None:
    assert main(["fit", "--config", str(CONFIG), *tiny_overrides(tmp_path)]) == 0
    ckpt_path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt = load_checkpoint(ckpt_path, family="t2i-image")
    assert ckpt["ganforge"]["g_step"] == ckpt["global_step"] == 4  # max_steps counts generator steps
    assert ckpt["hyper_parameters"]["clip_path"] is None  # rebuilt from the recorded tower sizes
    assert any(k.startswith("text_encoder.") for k in ckpt["state_dict"])
    model = TextToImage.from_checkpoint(ckpt_path)
    out = model.generate(["a red circle"], num_samples=2, seed=0, layouts=[[]])
    assert out.images.shape == (1, 2, 3, 32, 32)


def test_fit_refuses_class_names_or_image_size_that_differ_from_the_data(tmp_path: Path, capsys) -> None:
    args = ["fit", "--config", str(CONFIG), *tiny_overrides(tmp_path), "--model.init_args.class_names=[a,b]"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("t2i: error: model class_names=['a', 'b'] but data class_names=['circle', ")
    size = "--data.init_args.image_size=64"
    assert main(["fit", "--config", str(CONFIG), *tiny_overrides(tmp_path), size]) == 1
    assert "model image_size=32 but data image_size=64: set both" in capsys.readouterr().err


def test_sample_media_carry_captions_and_boxes() -> None:
    torch.manual_seed(0)
    model = ImageGAN(
        image_size=32, g_widths=[16, 16, 8, 8], d_widths=[8, 16], object_widths=[8, 8, 8], text_layers=1
    )
    batch = collate_layouts(single_object_items(10, 32, seed=0), max_objects=2)
    media = model.sample(batch, torch.Generator().manual_seed(0))["samples"]
    assert media.images.shape == (8, 3, 32, 32)  # at most 8 images
    assert media.captions == batch["caption"][:8]
    first = media.boxes[0]
    assert len(first) == 1 and first[0].label == model.class_names[int(batch["labels"][0, 0])]
    assert first[0].x == pytest.approx(float(batch["boxes"][0, 0, 0]))
    again = model.sample(batch, torch.Generator().manual_seed(0))["samples"]
    assert torch.equal(media.images, again.images)
    json.dumps([b.__dict__ for b in first])  # plain data for the W&B table


@pytest.mark.parametrize("phrase_context", [False, True])
@pytest.mark.parametrize("phrase_grounding", [False, True])
def test_losses_are_finite_and_the_mismatch_term_is_logged(
    phrase_context: bool, phrase_grounding: bool
) -> None:
    torch.manual_seed(0)
    model = ImageGAN(
        image_size=32,
        g_widths=[16, 16, 8, 8],
        d_widths=[8, 16],
        object_widths=[8, 8, 8],
        text_layers=1,
        phrase_context=phrase_context,
        phrase_grounding=phrase_grounding,
    )
    batch = collate_layouts(two_object_items(6, 32, seed=1), max_objects=3)
    d_loss, d_logs = model.discriminator_loss(batch)
    g_loss, g_logs = model.generator_loss(batch)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    assert {"d0_uncond", "d0_cond", "d_object"} <= d_logs.keys() and {"g0_patch", "g_object"} <= g_logs.keys()
    g_loss.backward()
    assert all(p.grad is None for p in model.text_encoder.parameters())  # the text tower stays frozen
    assert any(p.grad is not None for p in model.generator.object_attention.parameters())
    if phrase_context:
        assert model.generator.object_attention.phrases.out.weight.grad is not None


def test_phrase_grounding_gives_each_object_its_own_phrase() -> None:
    torch.manual_seed(0)
    model = ImageGAN(
        image_size=32, g_widths=[16, 16, 8, 8], d_widths=[8, 16], text_layers=1, phrase_grounding=True
    )
    captions = ["a red circle to the left of a blue circle", "a green square"]
    labels = torch.tensor([[1, 1], [2, 0]])
    colors = [["blue", "red"], ["green", ""]]
    tokens, used = model.phrase_tokens(captions, labels, labels > 0, colors)
    expected = ["to the left of a blue circle", "a red circle", "a green square", ""]
    assert torch.equal(tokens, model.text_encoder.tokens_of(expected)[0])
    phrases = model.encode_phrases(tokens, used, slots=2)
    assert phrases.tokens.shape[:3] == (2, 2, used) and phrases.sentence.shape[:2] == (2, 2)
    assert used < tokens.shape[1] and phrases.padding_mask.shape == (2, 2, used)  # padding columns cut
    inputs = model.host_inputs(
        {"caption": captions, "labels": labels, "object_mask": labels > 0, "colors": colors}
    )
    assert (
        torch.equal(inputs["phrase_tokens"], tokens)
        and inputs["mismatch_phrase_tokens"].shape == tokens.shape
    )
    plain = ImageGAN(image_size=32, g_widths=[16, 16, 8, 8], d_widths=[8, 16], text_layers=1)
    assert plain.phrase_tokens(captions, labels, labels > 0) is None


def test_two_stage_generator_emits_an_image_per_stage() -> None:
    model = ImageGAN(
        image_size=32,
        stages=2,
        g_widths=[16, 8, 8],
        refine_width=8,
        d_widths=[8, 16],
        object_widths=[8, 8, 8],
        text_layers=1,
    )
    batch = collate_layouts(single_object_items(2, 32, seed=2), max_objects=1)
    text = model.encode(batch["caption"])
    images = model.generator(
        model.noise(2, model.generator.latent_dim),
        text,
        batch["labels"],
        batch["masks"],
        batch["object_mask"],
    )
    assert [tuple(x.shape) for x in images] == [(2, 3, 16, 16), (2, 3, 32, 32)]
    assert len(model.discriminator.patch) == 2
    loss, logs = model.discriminator_loss(batch)
    assert torch.isfinite(loss) and "d1_cond" in logs


def test_bad_generator_sizes_name_the_field() -> None:
    with pytest.raises(ValueError, match="widths=\\[16, 8\\] grow 4x4 to 8, but stage 0 must end at 32"):
        ImageGAN(image_size=32, g_widths=[16, 8], text_layers=1)


@pytest.mark.parametrize("name", ["shapes_image.yaml", "shapes_image_tiny.yaml", "coco_image_256.yaml"])
def test_configs_parse_and_their_generators_have_consistent_sizes(name: str, capsys) -> None:
    import yaml

    from t2i.models.image import ImageGenerator

    path = CONFIG.parent / name
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(path), "--print_config"])
    assert exit_info.value.code in (0, None) and "t2i.image_stage.ImageGAN" in capsys.readouterr().out
    args = yaml.safe_load(path.read_text())["model"]["init_args"]
    net = ImageGenerator(
        num_classes=len(args["class_names"]) + 1,
        token_dim=64,
        sentence_dim=32,
        image_size=args["image_size"],
        stages=args["stages"],
        widths=args["g_widths"],
        refine_width=args.get("refine_width", 32),
    )
    assert net.stage_sizes[-1] == args["image_size"] and len(net.stage_sizes) == args["stages"]
