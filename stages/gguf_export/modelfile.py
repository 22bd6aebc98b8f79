"""The Ollama ``Modelfile`` next to the exported GGUF: the file, the single-turn ChatML template the
model was trained with (stages/model/prompt.py renders the same text through the chat template), the
training system prompt, greedy decoding and the end-of-turn stops.

    ollama create medqa -f models/export/Modelfile && ollama run medqa "高血压患者饮食要注意什么？"
"""
from __future__ import annotations

# Ollama's Go template; equals render_prompt(tokenizer, question, system) + the answer + <|im_end|>
TEMPLATE = ("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
            "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
            "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n")


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ValueError('the system prompt cannot contain """ (Modelfile string delimiter)')
    return f'"""{text}"""'


def modelfile(gguf_name: str, system: str, stops: list[str], num_predict: int) -> str:
    lines = [f"# MedQA-LoRA for Ollama: ollama create medqa -f Modelfile (written by the export stage)",
             f"FROM ./{gguf_name}", f"TEMPLATE {_quoted(TEMPLATE)}", f"SYSTEM {_quoted(system)}",
             "PARAMETER temperature 0", "PARAMETER top_k 1", f"PARAMETER num_predict {num_predict}"]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    return "\n".join(lines) + "\n"
