"""``dse predict``: scenario rows (``dse.scenarios``) in, the same rows with predictions out:
instance rows through the model in one batched call (``frame``), system rows through a
:class:`~dse.stack.Stack` (``stack_rows``)."""

from .frame import predict_frame as predict_frame
