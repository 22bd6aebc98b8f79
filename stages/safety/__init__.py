"""Safety layer shared by evaluate and serve: emergency/self-harm triage, reminders, risky advice, injection."""
