"""Opt-in training speed paths for GANModule: channels_last 2-D convolutions and torch.compile.

Both are chosen from config (`model.init_args.gan.channels_last: true`, `model.init_args.gan.compile: true`)
and applied by `GANModule.configure_model` before the first step. Neither renames a parameter, so
checkpoints load with or without them. Both give the eager fp32 outputs up to float summation order.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

# C++ compilers torch inductor can build CPU kernels with (it also honours $CXX).
CPU_COMPILERS = ("g++", "c++", "clang++")


def use_channels_last(*nets: nn.Module) -> None:
    """Store every 4-D parameter and buffer of `nets` (2-D conv weights) in channels_last order, in place.

    A 2-D convolution with a channels_last weight returns channels_last activations (B, C, H, W
    with C the fastest axis), which cuDNN and oneDNN run without layout conversions; elementwise
    ops keep that layout. Linear, 3-D conv and 1-D tensors are unchanged.
    """
    for module in (m for net in nets for m in net.modules()):
        # Not `net.to(memory_format=...)`: it refuses the 5-D weights of 3-D convolutions.
        for param in module.parameters(recurse=False):
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
        for name, buffer in module.named_buffers(recurse=False):
            if buffer.dim() == 4:
                setattr(module, name, buffer.contiguous(memory_format=torch.channels_last))


def compile_calls(*nets: nn.Module, device: torch.device) -> list[str]:
    """torch.compile, in place, every module of `nets` a training step calls; returns their class names.

    A module that defines `forward` is compiled as a whole (`nn.Module.compile`, which keeps
    parameter names). A network without its own forward is a holder whose parts the step calls
    (VideoDiscriminator holds D_S and D_T): its children are compiled instead, through ModuleLists.
    Parts without a forward of their own stay eager: the step reaches them through other methods
    (t2i's patch and object discriminators, through `features` and `logits`), and compiling their
    layers one by one breaks backward (spectral norm's in-place power iteration on a layer called
    several times before backward). Compilation happens at the first call; graph breaks fall back
    to eager. Raises RuntimeError on CPU when no C++ compiler is installed, since inductor builds
    its CPU kernels with one.
    """
    if device.type == "cpu" and not (os.environ.get("CXX") or any(map(shutil.which, CPU_COMPILERS))):
        raise RuntimeError(
            "compile: true on CPU needs a C++ compiler (torch inductor builds its kernels with one); "
            f"none of {', '.join(CPU_COMPILERS)} or $CXX found: install g++ or set compile: false"
        )
    return [name for net in nets for name in _compile_module(net, holder=True)]


def _compile_module(module: nn.Module, holder: bool) -> list[str]:
    if type(module).forward is not nn.Module.forward:
        if module._compiled_call_impl is None:  # configure_model may run again (fit then validate)
            module.compile()
        return [type(module).__name__]
    if holder or isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return [name for child in module.children() for name in _compile_module(child, holder=False)]
    return []
