"""MedQA-LoRA pipeline stages. Each stage is `python -m stages.<name>`."""
