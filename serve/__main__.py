"""CLI: ``python -m serve --model models/merged --host 127.0.0.1 --port 8000``.

Development: ``--model models/base --adapter models/lora`` (LoRA attached unmerged).
Safety-only mode: ``--no-model`` (no model is loaded; emergencies and other pre-check replies
still work, other questions get 503). See serve/README.md."""
from __future__ import annotations

import argparse
from dataclasses import replace
import logging
import os
import signal
import sys

logger = logging.getLogger("serve")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="HF model directory (models/merged; models/base for development)")
    p.add_argument("--adapter", help="LoRA adapter directory, attached unmerged to --model (dynamic loading)")
    p.add_argument("--no-model", action="store_true",
                   help="load no model: safety pre-check replies and cached answers only, others get 503")
    p.add_argument("--params", default="params.yaml", help="params file (serve.*, prompt.system)")
    p.add_argument("--triage-model", help="triage stage output (default: params serve.triage_model, models/triage)")
    p.add_argument("--rules-only-triage", action="store_true",
                   help="serve the emergency pre-check with the keyword rules only, without the triage classifier "
                        "(lower recall; for when models/triage cannot be built)")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "0.0.0.0", "::"])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key-env", help="env var holding the API key (default: params serve.api_key_env)")
    p.add_argument("--audit-log", help='audit JSONL path, "-" for stderr (default: params serve.audit_log)')
    g = p.add_argument_group("overrides of params serve.* (for benchmarks and tests)")
    g.add_argument("--max-batch-size", type=int)
    g.add_argument("--batch-timeout", type=float)
    g.add_argument("--max-new-tokens", type=int)
    g.add_argument("--max-question-chars", type=int)
    g.add_argument("--cache-size", type=int, help="0 disables the answer cache")
    g.add_argument("--cache-ttl", type=float, dest="cache_ttl_s")
    g.add_argument("--request-timeout", type=float, dest="request_timeout_s", help="0 = no limit")
    g.add_argument("--max-in-flight", type=int, help="requests waiting for the model at once (429 beyond); 0 = no limit")
    g.add_argument("--generation-timeout", type=float, dest="generation_timeout_s", help="503 past it; 0 = none")
    g.add_argument("--body-timeout", type=float, dest="body_timeout_s", help="408 when the body is slower; 0 = none")
    g.add_argument("--max-prompt-tokens", type=int)
    g.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16", "int8"])
    g.add_argument("--no-warmup", action="store_true", help="skip the warm-up generation at start")
    g.add_argument("--no-prefix-cache", action="store_true",
                   help="prefill the system prompt for every request instead of reusing its KV cache")
    p.add_argument("--enable-shutdown-api", action="store_true",
                   help="LitServe's POST /shutdown (needs LIT_SHUTDOWN_API_KEY in the environment)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = p.parse_args(argv)
    if args.no_model == bool(args.model):
        p.error("give exactly one of --model PATH or --no-model")
    if args.adapter and args.no_model:
        p.error("--adapter needs --model")
    if args.triage_model and args.rules_only_triage:
        p.error("give at most one of --triage-model and --rules-only-triage")
    for name in ("max_batch_size", "max_new_tokens", "max_question_chars", "max_prompt_tokens"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("batch_timeout", "cache_size", "cache_ttl_s", "request_timeout_s", "max_in_flight",
                 "generation_timeout_s", "body_timeout_s"):
        v = getattr(args, name)
        if v is not None and v < 0:
            p.error(f"{name} must be >= 0")
    if args.enable_shutdown_api and not os.environ.get("LIT_SHUTDOWN_API_KEY"):
        p.error("--enable-shutdown-api needs the LIT_SHUTDOWN_API_KEY environment variable")
    return args


def settings_from_args(args):
    from serve.settings import ServeSettings, check_model_dir
    from stages.common.config import ParamsError, load_params

    try:
        params = load_params(args.params)
    except ParamsError as err:
        raise SystemExit(f"serve: {err}")
    if args.model:
        check_model_dir(args.model, "model")
    if args.adapter:
        check_model_dir(args.adapter, "adapter")
    settings = ServeSettings.from_params(
        params, None if args.no_model else args.model, args.adapter,
        api_key_env=args.api_key_env, audit_log=args.audit_log, max_batch_size=args.max_batch_size,
        batch_timeout=args.batch_timeout, max_new_tokens=args.max_new_tokens,
        max_question_chars=args.max_question_chars, cache_size=args.cache_size, cache_ttl_s=args.cache_ttl_s,
        request_timeout_s=args.request_timeout_s, warmup=False if args.no_warmup else None,
        prefix_cache=False if args.no_prefix_cache else None, dtype=args.dtype,
        max_in_flight=args.max_in_flight, generation_timeout_s=args.generation_timeout_s,
        body_timeout_s=args.body_timeout_s, max_prompt_tokens=args.max_prompt_tokens,
        enable_shutdown_api=args.enable_shutdown_api, triage_model=args.triage_model)
    return replace(settings, triage_model=None) if args.rules_only_triage else settings


def _stop_children(server) -> None:
    """After a failed start LitServe has not cleaned up: stop the workers and the manager ourselves,
    so nothing is left behind (non-daemon workers would also block interpreter exit)."""
    for proc in getattr(server, "inference_workers", None) or []:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    manager = getattr(getattr(server, "transport_config", None), "manager", None)
    if manager is not None:
        try:
            manager.shutdown()
        except Exception:
            pass


def _graceful_sigterm() -> None:
    """SIGTERM → the same graceful path as Ctrl-C in this (main) process: LitServe then terminates its
    API-server and inference-worker processes; a plain SIGTERM would kill only this process and
    orphan them. Forked children inherit the handler, so there it restores the default action."""
    main_pid = os.getpid()

    def on_term(signum, frame):
        if os.getpid() == main_pid:
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(args)
    from serve.auth import require_key_off_loopback

    refusal = require_key_off_loopback(args.host, settings.api_key, settings.api_key_env)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if settings.triage_model is not None:          # the served pre-check needs it: fail now, not in a worker
        from serve.settings import check_triage_dir

        check_triage_dir(settings.triage_model)
    if settings.api_key is None:
        logger.warning("API key auth is OFF: the environment variable %s is unset or empty", settings.api_key_env)
    from serve.app import build_server

    server = build_server(settings)
    _graceful_sigterm()
    logger.info("serving %s on http://%s:%d (audit log: %s)", settings.model.path or "no model (--no-model)",
                args.host, args.port, settings.audit_log or "stderr")
    try:
        server.run(host=args.host, port=args.port, num_api_servers=1, generate_client_file=False,
                   log_level=args.log_level, access_log=False)
    except KeyboardInterrupt:       # arrived before LitServe's own handler was in place
        logger.info("interrupted during start-up")
        _stop_children(server)
        return 130
    except BaseException:
        logger.exception("server failed")
        _stop_children(server)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
