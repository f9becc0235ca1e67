"""Database readers, QA generation, visual inputs and synthetic databases for ME-VQA."""
