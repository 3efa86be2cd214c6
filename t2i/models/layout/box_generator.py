"""The Obj-GAN box generator: text -> a sequence of (class, box), one object per step.

Li et al. 2019 §3.1: an autoregressive decoder emits at step t a class l_t (softmax with an end
token), then the box centre (x_t, y_t) ~ GMM(. | h_t, l_t) and the size (w_t, h_t) ~ GMM(. | h_t,
l_t, x_t, y_t), each a K=5 bivariate Gaussian mixture (`t2i.models.layout.mixture`). Obj-GAN's decoder is
an LSTM; here it is a small Transformer decoder over the interleaved sequence
start, l_0, b_0, l_1, b_1, ... (causal self-attention), so each box is placed by a state that
already holds its class and every earlier object. It cross-attends to the caption: the sentence
embedding alone, or the sentence plus every token feature (`use_tokens`) after `token_layers`
bidirectional layers, which lets it read word order ("a circle left of a square" vs the reverse).
Training is teacher forcing with class NLL + mixture NLL.

Class index 0 is the end token (and the padding label of `collate_layouts`); real classes are 1..K-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.losses import masked_mean
from t2i.models.layout.mixture import PARAMS_PER_COMPONENT, BivariateMixture
from t2i.models.text import TextFeatures

END = 0
MIN_SIDE = 0.01  # sampled sides are clamped to at least 1% of the image so every box has area
PAD_BOX = (0.25, 0.25, 0.5, 0.5)  # the (x, y, w, h) a padded slot's NLL is taken at, then weighed 0


@dataclass
class BoxLosses:
    """Teacher-forced losses, each a scalar mean: class NLL per decoded step (objects + end),
    centre and size mixture NLL per object."""

    class_nll: Tensor
    centre_nll: Tensor
    size_nll: Tensor

    def total(self, size_weight: float = 1.0) -> Tensor:
        """class_nll + centre_nll + size_weight * size_nll.

        Each head's own parameters see only its own term, and Adam normalises per parameter, so
        the weight only sets how strongly the size term steers the shared decoder and text tower.
        """
        return self.class_nll + self.centre_nll + size_weight * self.size_nll


@dataclass
class SampledBoxes:
    """Layouts drawn by `BoxGenerator.sample`, objects sorted by area, largest first.

    N <= max_objects is the number of decoding steps run. labels: (B, N) long, 0 at padding;
    boxes: (B, N, 4) normalised (x, y, w, h), top-left corner, zero at padding; object_mask: (B, N)
    bool, True for real objects; emitted: (B, N) long, the decoding step that drew each slot (the
    caption's mention order for a stage taught in that order), None for layouts not drawn here.
    """

    labels: Tensor
    boxes: Tensor
    object_mask: Tensor
    emitted: Tensor | None = None


def to_centre_size(boxes: Tensor) -> tuple[Tensor, Tensor]:
    """(x, y, w, h) top-left boxes (..., 4) -> centres (..., 2) and sizes (..., 2)."""
    return boxes[..., :2] + boxes[..., 2:] / 2, boxes[..., 2:]


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear -> GELU -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class BoxGenerator(nn.Module):
    """Autoregressive class + box decoder conditioned on caption features.

    Args:
        num_classes: class count including the end/padding class 0.
        sentence_dim: D of `TextFeatures.sentence`.
        token_dim: W of `TextFeatures.tokens`.
        hidden: decoder width.
        layers: Transformer decoder layers.
        heads: attention heads (hidden must be divisible by it).
        components: K, Gaussians per mixture (Obj-GAN: 5).
        max_objects: N, the most objects per layout (Obj-GAN: 10).
        use_tokens: attend over the token features; False conditions on the sentence alone.
        token_layers: bidirectional self-attention layers over the projected token features (the
            CLIP tower is causal: a word's feature never sees the words after it).
        dropout: dropout inside the decoder layers.
    """

    def __init__(
        self,
        num_classes: int,
        sentence_dim: int,
        token_dim: int,
        hidden: int = 128,
        layers: int = 2,
        heads: int = 4,
        components: int = 5,
        max_objects: int = 10,
        use_tokens: bool = True,
        token_layers: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_classes < 2 or max_objects < 1 or components < 1:
            raise UserError(
                f"BoxGenerator: num_classes={num_classes} (>= 2 with the end class), "
                f"max_objects={max_objects} and components={components} (>= 1)"
            )
        if hidden % heads:
            raise UserError(f"BoxGenerator: hidden={hidden} is not divisible by heads={heads}")
        self.num_classes, self.max_objects, self.components = num_classes, max_objects, components
        self.use_tokens = use_tokens
        self.sentence_in = nn.Linear(sentence_dim, hidden)
        self.tokens_in = nn.Linear(token_dim, hidden) if use_tokens else None
        self.token_context = None
        if use_tokens and token_layers > 0:
            encoder_layer = nn.TransformerEncoderLayer(
                hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            self.token_context = nn.TransformerEncoder(
                encoder_layer, token_layers, enable_nested_tensor=False
            )
        self.start = nn.Parameter(torch.zeros(hidden))
        self.position = nn.Parameter(torch.randn(2 * max_objects, hidden) * 0.02)
        self.class_in = nn.Embedding(num_classes, hidden)
        self.box_in = mlp(4, hidden, hidden)
        layer = nn.TransformerDecoderLayer(
            hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(hidden))
        self.class_head = nn.Linear(hidden, num_classes)
        mixture_out = PARAMS_PER_COMPONENT * components
        self.centre_head = mlp(hidden, 2 * hidden, mixture_out)
        self.size_head = mlp(hidden + 2, 2 * hidden, mixture_out)

    # ------------------------------------------------------------------ decoder
    def memory(self, text: TextFeatures) -> tuple[Tensor, Tensor]:
        """Cross-attention memory (B, 1 + L, hidden) or (B, 1, hidden) and its padding mask (True = pad)."""
        sentence = self.sentence_in(text.sentence)[:, None]  # (B, 1, hidden)
        pad = torch.zeros(sentence.shape[:2], dtype=torch.bool, device=sentence.device)
        if self.tokens_in is None:
            return sentence, pad
        tokens = self.tokens_in(text.tokens)  # (B, L, hidden)
        if self.token_context is not None:
            tokens = self.token_context(tokens, src_key_padding_mask=text.padding_mask)
        return torch.cat([sentence, tokens], 1), torch.cat([pad, text.padding_mask], 1)

    def decode(
        self, text: TextFeatures, memory: tuple[Tensor, Tensor], labels: Tensor, boxes: Tensor, length: int
    ) -> Tensor:
        """Decoder states (B, length, hidden) of the interleaved sequence start, l_0, b_0, l_1, b_1, ...

        The state at `start` and at each box b_t predicts the next class; the state at each class
        l_t predicts that object's box, so the box is placed knowing its class and every earlier
        object. labels (B, T) and boxes (B, T, 4) give objects 0..T-1 (teacher forcing or the
        samples so far); only the first `length` <= 2T + 1 positions are decoded.
        """
        first = (self.start + self.sentence_in(text.sentence))[:, None]  # (B, 1, hidden)
        centres, sizes = to_centre_size(boxes)
        pairs = torch.stack([self.class_in(labels), self.box_in(torch.cat([centres, sizes], -1))], 2)
        x = torch.cat([first, pairs.flatten(1, 2)], 1)[:, :length]  # (B, length, hidden)
        x = x + self.position[:length]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=x.device), diagonal=1)
        mem, mem_pad = memory
        return self.decoder(x, mem, tgt_mask=causal, memory_key_padding_mask=mem_pad, tgt_is_causal=True)

    def centre_mixture(self, state: Tensor) -> BivariateMixture:
        """Centre GMM of class-position states (..., hidden)."""
        return BivariateMixture.from_raw(self.centre_head(state))

    def size_mixture(self, state: Tensor, centres: Tensor) -> BivariateMixture:
        """Size GMM of class-position states (..., hidden) given the centres (..., 2)."""
        return BivariateMixture.from_raw(self.size_head(torch.cat([state, centres], -1)))

    # ------------------------------------------------------------------ training
    def loss(self, text: TextFeatures, labels: Tensor, boxes: Tensor, object_mask: Tensor) -> BoxLosses:
        """Teacher-forced NLLs of ground-truth layouts.

        Args:
            text: caption features, batch B.
            labels: (B, N) classes 1..K-1, 0 at padding; objects sorted largest first.
            boxes: (B, N, 4) normalised (x, y, w, h).
            object_mask: (B, N) True for real objects (a prefix of each row).
        """
        n = labels.shape[1]
        if n > self.max_objects:
            raise UserError(f"BoxGenerator: {n} object slots > max_objects={self.max_objects}")
        states = self.decode(text, self.memory(text), labels, boxes, 2 * n)  # (B, 2N, hidden)
        class_states, box_states = states[:, 0::2], states[:, 1::2]  # (B, N, hidden) each
        # Every slot is scored and the means count the real ones (`masked_mean`): selecting them
        # would make the host read their number.
        # Class targets: the objects, then the end token once (a full row of N objects stops by length).
        counts = object_mask.sum(1)
        class_valid = torch.arange(n, device=labels.device)[None] <= counts[:, None]
        class_targets = labels.masked_fill(~object_mask, END)
        logits = self.class_head(class_states)
        class_terms = F.cross_entropy(logits.flatten(0, 1), class_targets.flatten(), reduction="none")
        class_nll = masked_mean(class_terms, class_valid.flatten())
        # Padded boxes become a valid dummy, so their (unused) NLLs and gradients stay finite.
        safe = torch.where(object_mask[..., None], boxes, boxes.new_tensor(PAD_BOX))
        centres, sizes = to_centre_size(safe)
        real = object_mask.flatten()
        centre_nll = masked_mean(self.centre_mixture(box_states).nll(centres).flatten(), real)
        size_nll = masked_mean(self.size_mixture(box_states, centres).nll(sizes).flatten(), real)
        return BoxLosses(class_nll, centre_nll, size_nll)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        text: TextFeatures,
        temperature: float = 0.4,
        rng: torch.Generator | None = None,
        max_objects: int | None = None,
    ) -> SampledBoxes:
        """Draw one layout per caption (B of them), at most `max_objects` objects each.

        The class is drawn from softmax(logits / temperature) (argmax at 0) and stops a layout at
        the end token; centre and size come from their mixtures at the same temperature (Obj-GAN
        samples boxes at 0.4). Boxes are clamped inside the image, then sorted largest first.
        """
        limit = self.max_objects if max_objects is None else max_objects
        if not 1 <= limit <= self.max_objects:
            raise UserError(f"BoxGenerator.sample: max_objects={limit}; expected 1..{self.max_objects}")
        batch, device = text.sentence.shape[0], text.sentence.device
        memory = self.memory(text)
        labels = torch.zeros(batch, 0, dtype=torch.long, device=device)
        boxes = torch.zeros(batch, 0, 4, device=device)
        alive = torch.ones(batch, dtype=torch.bool, device=device)
        for t in range(limit):
            state = self.decode(text, memory, labels, boxes, 2 * t + 1)[:, -1]  # (B, hidden)
            label = self._sample_class(self.class_head(state), temperature, rng)
            alive = alive & (label != END)
            labels = torch.cat([labels, label.masked_fill(~alive, END)[:, None]], 1)
            pending = torch.cat([boxes, boxes.new_zeros(batch, 1, 4)], 1)  # the box is not decoded yet
            state = self.decode(text, memory, labels, pending, 2 * t + 2)[:, -1]
            centre = self.centre_mixture(state).sample(temperature, rng)
            size = self.size_mixture(state, centre).sample(temperature, rng).clamp(MIN_SIDE, 1.0)
            corner = torch.minimum((centre - size / 2).clamp_min(0.0), 1.0 - size)
            boxes = torch.cat([boxes, (torch.cat([corner, size], -1) * alive[:, None])[:, None]], 1)
            if not alive.any():
                break
        return sort_largest_first(labels, boxes, labels != END)

    @staticmethod
    def _sample_class(logits: Tensor, temperature: float, rng: torch.Generator | None) -> Tensor:
        if temperature == 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=rng).squeeze(-1)


def sort_largest_first(labels: Tensor, boxes: Tensor, object_mask: Tensor) -> SampledBoxes:
    """Reorder each row's objects (B, N) by box area, largest first, padding last (stable)."""
    area = boxes[..., 2] * boxes[..., 3]
    key = torch.where(object_mask, area, torch.full_like(area, -1.0))
    order = key.argsort(dim=1, descending=True, stable=True)
    return SampledBoxes(
        labels.gather(1, order),
        boxes.gather(1, order[..., None].expand_as(boxes)),
        object_mask.gather(1, order),
        emitted=order,
    )
