"""Sequence pretraining (NextItNet) and parameter-efficient fine-tuning (PeterRec).

Yuan et al., "Parameter-Efficient Transfer from Sequential Behaviors for User Modeling
and Recommendation", SIGIR 2020. Modules: ``sequences`` (per-user sequences, splits,
tokens), ``nextitnet`` (the network), ``pretrain`` (next-item pretraining), ``patches``
(model patches), ``finetune`` (FineAll/FineLast/FineCLS/PeterRec/scratch), ``tasks``
(attribute prediction, cold-start recommendation), ``comparison`` (the evaluation
table), ``checkpoint`` (weights + config + item-id map on disk), ``stages`` (the
pipeline's stages and the artifacts they hand each other).
"""
