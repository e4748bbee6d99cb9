package tokenizer

type hfPipeline struct{}
