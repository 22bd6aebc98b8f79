"""Evaluation metrics, one module per family:

- overlap     ROUGE-1/2/L (rouge-score, character and jieba-word tokenizers), BLEU (sacrebleu zh), chrF
- bertscore   BERTScore P/R/F1 (bert-score) on a configurable, offline-by-default encoder
- perplexity  answer-token negative log-likelihood through stages.model.prompt (reference perplexity, MCQ)
- safety      per-answer safety flags from stages.safety.rules (the rules serve/ enforces)
- terms       medical term precision/recall against the reference (stages.data.text.TermDict)
- mcq         multiple-choice accuracy by option log-likelihood (capability retention)
- aggregate   per-example scores → overall / per-tier / per-category summaries and deltas

Heavy imports (torch, bert-score, jieba) live inside the modules that need them."""
