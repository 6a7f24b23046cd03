"""The local backend's LoRA trainer: supervised fine-tuning of LOCAL_BASE_MODEL with transformers + peft."""
