"""Run any lm-evaluation-harness task on a (converted) model and report routing statistics beside its metrics.

:class:`RoutedHFLM` is lm-eval's ``HFLM`` with a :class:`~adamoe.stats.RoutingRecorder` around every
forward it makes; it is registered with lm-eval as model ``"adamoe"`` (importing this module registers
it), so ``simple_evaluate(model="adamoe", model_args="pretrained=tiny-mixtral-adamoe")`` works, and
:func:`evaluate_with_routing` runs tasks one at a time so routing is attributable to each task.

Padding is never counted:

- log-likelihood requests (``_model_call``): lm-eval right-pads each batch with token id 0, which is a
  real token for many tokenizers, so padding cannot be told from the ids. The real length of each row
  only appears afterwards, when lm-eval calls ``_select_cont_toks(logits, contlen, inplen)`` once per
  row, in row order. So the routings of a forward are held back and committed with a mask built from
  those lengths once every row has been seen. A forward whose rows are never scored (lm-eval's batch
  size probing) is dropped. This is exact for causal LMs and needs no copy of lm-eval's batching code.
- generation (``_model_generate``): the prompt forward is masked with the (left-padding) attention
  mask; in the decoding steps a row whose fed token is pad or EOS has already finished, so it is
  dropped. Approximation: lm-eval's stop-string criterion only ends generation when *every* row has
  hit a stop string, so tokens a row generates past its own stop string (and that lm-eval then cuts
  off) are counted, because the model really computed them.
- seq2seq backends are not masked (our converter targets decoder-only MoE families).

Data parallelism (``accelerate launch`` / ``torchrun`` with several processes, a model spec or folder as
``pretrained``): each process loads the model onto its own device and lm-eval splits the requests, as its
own ``hf`` model does for a model it loads (given a model object, lm-eval assumes one process and every
process would evaluate everything). The routing sums stay on the device while recording; at the end of
each of lm-eval's request calls (which every process makes, in step) they are all-reduced (SUM) once, so
the report rank 0 writes covers every process's requests. lm-eval pads the processes' shares to equal
length with repeats of a request; those repeats run, so they are counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from torch import nn

from adamoe.eval.evaluate import flops_columns
from adamoe.routing.base import Routing
from adamoe.stats import LayerStats, RoutingRecorder, add_layers, iter_routing_sources, reduce_layers
from adamoe.stats.layer_stats import summarise_layers

__all__ = ["REPORT_LISTENERS", "RoutedHFLM", "evaluate_with_routing", "infer_baseline_k"]

MODEL_NAME = "adamoe"
#: Callables given each routing report lm-eval collects through :meth:`RoutedHFLM.get_model_info` (once
#: per ``simple_evaluate``); ``adamoe lm-eval`` subscribes to print it beside lm-eval's table.
REPORT_LISTENERS: list[Callable[[dict[str, Any]], None]] = []
# Keys of simple_evaluate's output that are keyed by task; merged when tasks are run one by one.
_PER_TASK_KEYS = (
    "results",
    "groups",
    "group_subtasks",
    "configs",
    "versions",
    "n-shot",
    "higher_is_better",
    "n-samples",
    "samples",
)


def infer_baseline_k(model: nn.Module) -> int | None:
    """The top-k of the model before AdaMoE conversion (the %FLOPs reference), or None for dense models."""
    config = getattr(model, "config", None)
    recorded = getattr(config, "adamoe", None) or {}
    k = recorded.get("base_top_k") or getattr(config, "num_experts_per_tok", None)
    return int(k) if k else None


class _DeferredRecorder(RoutingRecorder):
    """A recorder that can hold routings back until the caller knows which positions were padding."""

    def __init__(self, model: nn.Module, *, baseline_k: int | None = None) -> None:
        super().__init__(model, baseline_k=baseline_k)
        self.deferring = False
        self.pending: list[tuple[Any, nn.Module, Routing]] = []

    def _callback(self, name: str):
        record = super()._callback(name)

        def record_or_hold(module: nn.Module, routing: Routing) -> None:
            if self.deferring:
                self.pending.append((record, module, routing))
            else:
                record(module, routing)

        return record_or_hold

    def commit(self, mask: torch.Tensor) -> None:
        """Fold the held routings in, keeping only positions where ``mask`` (T,) is True."""
        self.token_mask = mask.reshape(-1).to(torch.bool)
        try:
            for record, module, routing in self.pending:
                if routing.num_tokens != self.token_mask.numel():
                    raise RuntimeError(
                        f"routing of {routing.num_tokens} tokens does not match a padding mask of "
                        f"{self.token_mask.numel()} (lm-eval's batching changed?)"
                    )
                record(module, routing)
        finally:
            self.pending.clear()
            self.token_mask = None

    def discard(self) -> None:
        self.pending.clear()


@register_model(MODEL_NAME)
class RoutedHFLM(HFLM):
    """lm-eval's HF backend that records the routing of every forward it runs, padding excluded.

    ``pretrained``: a model spec or saved folder (see :func:`adamoe.hf.models.resolve_model`) or an
    already loaded model (then ``tokenizer`` is required). Dense models work and record nothing.
    """

    def __init__(
        self,
        pretrained: str | nn.Module,
        tokenizer: Any = None,
        *,
        baseline_k: int | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        accelerator = None
        if isinstance(pretrained, str):
            from adamoe.hf.models import resolve_model

            model, resolved_tokenizer, info = resolve_model(pretrained, seed=int(seed))
            tokenizer = resolved_tokenizer if tokenizer is None else tokenizer
            baseline_k = baseline_k or info.get("baseline_k")
            accelerator = _place(model, kwargs.get("device"))
        elif isinstance(pretrained, nn.Module):
            model = pretrained
            if tokenizer is None:
                raise ValueError("tokenizer: required when pretrained is a model object")
        else:
            raise ValueError(
                f"pretrained: expected a model spec, a folder or a model, got {type(pretrained).__name__}"
            )
        if baseline_k is not None and (isinstance(baseline_k, bool) or int(baseline_k) < 1):
            raise ValueError(f"baseline_k: expected None or an int >= 1, got {baseline_k!r}")
        super().__init__(pretrained=model, tokenizer=tokenizer, **kwargs)
        if accelerator is not None:  # lm-eval splits the requests over the processes (module docstring)
            self.accelerator = accelerator
            self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self.baseline_k = int(baseline_k) if baseline_k else infer_baseline_k(model)
        has_routing = next(iter_routing_sources(self.model), None) is not None
        self._recorder = _DeferredRecorder(self.model, baseline_k=self.baseline_k) if has_routing else None
        self._rows: int = 0
        self._width: int = 0
        self._lengths: list[int] = []
        self._settled: dict[str, LayerStats] = {}  # all processes' sums of the finished request calls

    # -- routing API -------------------------------------------------------------------------------

    @property
    def recorder(self) -> RoutingRecorder | None:
        """The underlying recorder (None for dense models)."""
        return self._recorder

    def routing_summary(self) -> dict[str, Any]:
        """The routing summary (:func:`~adamoe.stats.summarise_layers`) of everything recorded since the last
        reset, every process's requests included; {} for dense models. Not a collective: the processes'
        sums were added up at the end of each request call (:meth:`_settle`)."""
        if self._recorder is None:
            return {}
        self._drop_pending()
        layers = add_layers(self._settled, self._recorder.layers)
        out = summarise_layers(layers, baseline_k=self.baseline_k)
        if out["layers"]:
            out["tokens"] = max(layer["tokens"] for layer in out["layers"].values())
        return out

    def routing_report(self) -> dict[str, Any]:
        """:meth:`routing_summary` plus both FLOPs figures vs ``baseline_k`` (``expert_flops_pct``,
        ``model_flops_pct`` of :mod:`adamoe.eval.flops`); {} for dense models."""
        summary = self.routing_summary()
        if not summary.get("layers"):
            return summary
        flops = flops_columns(self.model, summary, baseline_k=self.baseline_k)
        return {**summary, **{k: v for k, v in flops.items() if v is not None}}

    def get_model_info(self) -> dict[str, Any]:
        """lm-eval's model info plus ``adamoe_routing`` (:meth:`routing_report`): lm-eval merges it into
        ``results["config"]`` and its results file, so routing travels with its metrics from any entry
        point (``lm_eval --model adamoe``, ``adamoe lm-eval``); each of ``REPORT_LISTENERS`` gets it too."""
        info = super().get_model_info()
        report = self.routing_report()
        if report:
            info["adamoe_routing"] = report
            for listener in REPORT_LISTENERS:
                listener(report)
        return info

    def reset_routing(self) -> None:
        """Drop any pending and recorded routing sums (start a new measurement)."""
        if self._recorder is not None:
            self._drop_pending()
            self._recorder.reset()
            self._settled = {}

    def _settle(self) -> None:
        """Fold this process's sums into the settled ones, summed over the processes lm-eval splits the
        requests over (a collective then; lm-eval makes every request call on every process)."""
        if self._recorder is None:
            return
        self._drop_pending()
        local = self._recorder.layers
        total = reduce_layers(local) if self.world_size > 1 else local
        self._settled = add_layers(self._settled, total)
        self._recorder.reset()

    # -- lm-eval's request calls: each process makes each once per request type -------------------

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        self._settle()
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        out = super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm)
        self._settle()
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = super().generate_until(requests, disable_tqdm=disable_tqdm)
        self._settle()
        return out

    # -- lm-eval hooks ------------------------------------------------------------------------------

    def _drop_pending(self) -> None:
        if self._recorder is not None:
            self._recorder.discard()
        self._rows = self._width = 0
        self._lengths = []

    def _model_call(
        self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self._recorder is None:
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        # A forward still waiting for its lengths was never scored (batch-size probing): not counted.
        self._drop_pending()
        if attn_mask is not None or labels is not None:  # seq2seq: counted unmasked (see module doc)
            with self._recorder:
                return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        self._recorder.deferring = True
        try:
            with self._recorder:
                logits = super()._model_call(inps)
        finally:
            self._recorder.deferring = False
        self._rows, self._width = int(inps.shape[0]), int(inps.shape[1])
        return logits

    def _select_cont_toks(
        self, logits: torch.Tensor, contlen: int | None = None, inplen: int | None = None
    ) -> torch.Tensor:
        # lm-eval calls this once per row of the last forward, in row order, with the row's real length.
        if self._recorder is not None and self._rows and self.backend == "causal" and inplen is not None:
            self._lengths.append(min(int(inplen), self._width))
            if len(self._lengths) == self._rows:
                lengths = torch.tensor(self._lengths)
                mask = torch.arange(self._width).unsqueeze(0) < lengths.unsqueeze(1)
                self._rows = 0
                self._lengths = []
                self._recorder.commit(mask)
        return super()._select_cont_toks(logits, contlen=contlen, inplen=inplen)

    def _loglikelihood_tokens(
        self,
        requests: list[tuple[tuple[str, str], list[int], list[int]]],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        try:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        finally:
            self._drop_pending()

    def _ended_ids(self, generation_kwargs: dict[str, Any]) -> set[int]:
        """Token ids that, fed back during decoding, mean the row had already finished (pad / EOS)."""
        generation_config = getattr(self.model, "generation_config", None)
        ids: set[int] = set()
        for value in (
            self.tokenizer.pad_token_id,
            self.eot_token_id,
            generation_kwargs.get("eos_token_id"),
            getattr(generation_config, "eos_token_id", None),
        ):
            if value is None:
                continue
            ids.update(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        return ids

    def _model_generate(
        self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any
    ):
        if self._recorder is None:
            return super()._model_generate(context, max_length, stop, **generation_kwargs)
        self._drop_pending()
        recorder = self._recorder
        ended = torch.tensor(sorted(self._ended_ids(generation_kwargs)), dtype=torch.long)
        state = {"prompt": True}

        def set_mask(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is None:  # embeddings only: nothing tells padding apart
                recorder.token_mask = None
                return
            mask = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
            attention = kwargs.get("attention_mask")
            if isinstance(attention, torch.Tensor) and attention.dim() == 2:
                mask &= attention[:, -ids.shape[1] :].to(torch.bool)
            if not state["prompt"]:
                mask &= ~torch.isin(ids, ended.to(ids.device))
            state["prompt"] = False
            recorder.token_mask = mask.reshape(-1)

        handle = self.model.register_forward_pre_hook(set_mask, with_kwargs=True)
        try:
            with recorder:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
        finally:
            handle.remove()
            recorder.token_mask = None


def _place(model: nn.Module, device: str | None) -> Any:
    """Put a model we loaded where lm-eval's ``hf`` model would put it: each process's own device under a
    multi-process launch (its Accelerator is returned then, for lm-eval's request split), else ``device``
    when this machine has it (lm-eval's CLI passes ``cuda`` by default), else the best device there is."""
    from accelerate import Accelerator, PartialState

    from adamoe.utils.device import DEVICES, resolve_device

    target = resolve_device("auto")
    if device is not None and torch.device(device).type in DEVICES:
        with contextlib.suppress(ValueError):  # not on this machine: as lm-eval does, the best one that is
            resolve_device(torch.device(device).type)
            target = torch.device(device)
    cpu = target.type == "cpu"  # Accelerate forms a CPU (gloo) group only when told cpu
    if PartialState(cpu=cpu).num_processes > 1:
        accelerator = Accelerator(cpu=cpu)
        model.to(accelerator.device)
        return accelerator
    model.to(target)
    return None


def evaluate_with_routing(
    model_or_spec: str | nn.Module | RoutedHFLM,
    tasks: Sequence[str],
    *,
    tokenizer: Any = None,
    task_manager: Any = None,
    limit: int | float | None = None,
    batch_size: int | str = 8,
    baseline_k: int | None = None,
    **simple_evaluate_kwargs: Any,
) -> dict[str, Any]:
    """lm-eval's ``simple_evaluate`` output for ``tasks`` plus ``out["routing"][task]`` = routing summary
    (load, entropy, bypass rate, tokens, per-layer stats, and both FLOPs figures vs ``baseline_k``:
    ``expert_flops_pct`` and the whole-model ``model_flops_pct`` of :mod:`adamoe.eval.flops`; {} for dense).

    Tasks run one at a time so each task's routing covers exactly its own requests.
    """
    from lm_eval import simple_evaluate

    if isinstance(tasks, str) or not tasks:
        raise ValueError(f"tasks: expected a non-empty list of task names, got {tasks!r}")
    if isinstance(model_or_spec, RoutedHFLM):
        lm = model_or_spec
    else:
        lm = RoutedHFLM(model_or_spec, tokenizer, baseline_k=baseline_k, batch_size=batch_size)
    merged: dict[str, Any] = {}
    routing: dict[str, Any] = {}
    for task in tasks:
        lm.reset_routing()
        out = simple_evaluate(
            model=lm, tasks=[task], task_manager=task_manager, limit=limit, **simple_evaluate_kwargs
        )
        if out is None:  # non-zero ranks of a distributed run get nothing back
            continue
        routing[task] = lm.routing_report()
        for key, value in out.items():
            if key in _PER_TASK_KEYS and isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, value)
    merged["routing"] = routing
    return merged
