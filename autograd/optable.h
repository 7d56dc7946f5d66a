/* The op table: one line per recorded op, read by internal.h (the op ids and the
 * declarations of the backward functions) and engine.c (the table itself).
 *
 *   AG__OP(id, grad_fn, forward, backward, needs0, needs1, rule0, rule1)
 *
 * id        AG__OP_<id>, stored in a recorded tensor's node(t)->op
 * grad_fn   PyTorch's name for the backward node, as printed in grad_fn=<...>
 * forward   bool forward(ag_tensor *out): computes out's values again from its recorded
 *           inputs (node(out)->src, arg, ctx) in place, with the loops the op's first run
 *           used, so that the floats are the same; a replay (replay.c) runs it. False
 *           after an error naming the op (values it refuses, as nll_loss's targets).
 *           ag__view_forward for a view (its values are its input's); ag__no_replay for
 *           an op a replay cannot run yet.
 * backward  void backward(ag_tensor *out): node(out)->gbuf holds d loss / d out; the
 *           function ag__accum-ulates what reaches each input that takes a gradient
 *           (ag__wants). Defined beside the op's forward in the file named below.
 * needs0/1  what the gradient of input 0 / input 1 reads: AG__A (input 0), AG__B
 *           (input 1), AG__OUT (the result), AG__CTX (what the op kept that is not a
 *           tensor: max's indices in node(out)->ctx, mul's number), AG__EXT (a third
 *           tensor kept in ctx as an ag__saved: where's condition). A node saves only what
 *           the gradients of its inputs that require grad read; that decides whether a
 *           second backward or an in-place change of a saved tensor is an error, as in
 *           PyTorch.
 * rule0/1   the local derivative that input 0 / input 1 takes, as the backward trace
 *           prints it (ag_set_trace): "d(a*b)/da = b"; g is the gradient arriving, y the
 *           result; NULL for an op of one input.
 *
 * Adding an op: write its forward and backward in the file of its kind, add its line
 * here. Nothing else changes. */

/* ops.c: elementwise arithmetic, sum and mean of everything, view and reshape, copy_ */
AG__OP(ADD, "AddBackward0", ag__add_forward, ag__add_backward, 0, 0, "d(a+b)/da = 1",
       "d(a+b)/db = 1")
AG__OP(SUB, "SubBackward0", ag__sub_forward, ag__sub_backward, 0, 0, "d(a-b)/da = 1",
       "d(a-b)/db = -1")
AG__OP(MUL, "MulBackward0", ag__mul_forward, ag__mul_backward, AG__B, AG__A, "d(a*b)/da = b",
       "d(a*b)/db = a")
AG__OP(DIV, "DivBackward0", ag__div_forward, ag__div_backward, AG__B, AG__A | AG__B,
       "d(a/b)/da = 1/b", "d(a/b)/db = -a/b^2")
/* with a number (arg.number) on one side; mul and div keep it, as PyTorch saves "other" */
AG__OP(ADD_NUMBER, "AddBackward0", ag__add_number_forward, ag__add_number_backward, 0, 0,
       "d(x+s)/dx = 1", NULL)
AG__OP(SUB_NUMBER, "SubBackward0", ag__sub_number_forward, ag__add_number_backward, 0, 0,
       "d(x-s)/dx = 1", NULL)
AG__OP(RSUB, "RsubBackward1", ag__rsub_forward, ag__rsub_backward, 0, 0, "d(s-x)/dx = -1", NULL)
AG__OP(MUL_NUMBER, "MulBackward0", ag__mul_number_forward, ag__mul_number_backward, AG__CTX, 0,
       "d(x*s)/dx = s", NULL)
AG__OP(DIV_NUMBER, "DivBackward0", ag__div_number_forward, ag__div_number_backward, AG__CTX, 0,
       "d(x/s)/dx = 1/s", NULL)
AG__OP(POW_TENSOR, "PowBackward1", ag__pow_tensor_forward, ag__pow_tensor_backward, AG__A | AG__B,
       AG__A | AG__B | AG__OUT, "d(a^b)/da = b*a^(b-1)", "d(a^b)/db = a^b*log(a)")
AG__OP(NEG, "NegBackward0", ag__neg_forward, ag__neg_backward, 0, 0, "d(-x)/dx = -1", NULL)
AG__OP(POW_SCALAR, "PowBackward0", ag__pow_scalar_forward, ag__pow_scalar_backward, AG__A, 0,
       "d(x^p)/dx = p*x^(p-1)", NULL)
AG__OP(SUM, "SumBackward0", ag__sum_forward, ag__sum_backward, 0, 0, "d sum(x)/dx = 1", NULL)
AG__OP(MEAN, "MeanBackward0", ag__mean_forward, ag__mean_backward, 0, 0,
       "d mean(x)/dx = 1/numel(x)", NULL)
AG__OP(VIEW, "ViewBackward0", ag__view_forward, ag__view_backward, 0, 0,
       "the gradient, in x's shape", NULL)
AG__OP(RESHAPE, "ReshapeAliasBackward0", ag__view_forward, ag__view_backward, 0, 0,
       "the gradient, in x's shape", NULL)
AG__OP(COPY, "CopyBackwards", ag__no_replay, ag__copy_backward, 0, 0, "d copy_(t, src)/d src = 1",
       NULL)

/* unary.c: elementwise functions of one tensor */
AG__OP(EXP, "ExpBackward0", ag__exp_forward, ag__exp_backward, AG__OUT, 0, "d exp(x)/dx = exp(x)",
       NULL)
AG__OP(LOG, "LogBackward0", ag__log_forward, ag__log_backward, AG__A, 0, "d log(x)/dx = 1/x", NULL)
AG__OP(SQRT, "SqrtBackward0", ag__sqrt_forward, ag__sqrt_backward, AG__OUT, 0,
       "d sqrt(x)/dx = 1/(2*sqrt(x))", NULL)
AG__OP(ABS, "AbsBackward0", ag__abs_forward, ag__abs_backward, AG__A, 0, "d |x|/dx = sign(x)", NULL)
AG__OP(RELU, "ReluBackward0", ag__relu_forward, ag__relu_backward, AG__OUT, 0,
       "d relu(x)/dx = 1 where x > 0, else 0", NULL)
AG__OP(SIGMOID, "SigmoidBackward0", ag__sigmoid_forward, ag__sigmoid_backward, AG__OUT, 0,
       "d sigmoid(x)/dx = y*(1-y)", NULL)
AG__OP(TANH, "TanhBackward0", ag__tanh_forward, ag__tanh_backward, AG__OUT, 0,
       "d tanh(x)/dx = 1-y^2", NULL)
AG__OP(CLAMP, "ClampBackward1", ag__clamp_forward, ag__clamp_backward, AG__A, 0,
       "d clamp(x)/dx = 1 where min <= x <= max, else 0", NULL)
AG__OP(MAP, "MapBackward", ag__no_replay, ag__map_backward, AG__A, 0,
       "d f(x)/dx = df(x), the derivative given to ag_map", NULL)

/* reduce.c: reductions over one dimension, max and min */
AG__OP(SUM_DIM, "SumBackward1", ag__sum_dim_forward, ag__sum_dim_backward, 0, 0,
       "d sum(x, dim)/dx = 1, spread along dim", NULL)
/* PyTorch 1.13's MeanBackward1 saves its input (though it reads only the sizes), so a
 * second backward, or an in-place change of the input, is an error there: here too. */
AG__OP(MEAN_DIM, "MeanBackward1", ag__mean_dim_forward, ag__mean_dim_backward, AG__A, 0,
       "d mean(x, dim)/dx = 1/n, spread along dim", NULL)
AG__OP(MAX, "MaxBackward1", ag__max_forward, ag__max_backward, AG__A | AG__OUT, 0,
       "d max(x)/dx = 1 at the maximum (shared among ties), else 0", NULL)
AG__OP(MIN, "MinBackward1", ag__max_forward, ag__max_backward, AG__A | AG__OUT, 0,
       "d min(x)/dx = 1 at the minimum (shared among ties), else 0", NULL)
AG__OP(MAX_DIM, "MaxBackward0", ag__max_dim_forward, ag__max_dim_backward, AG__CTX, 0,
       "d max(x, dim)/dx = 1 at each maximum along dim, else 0", NULL)
AG__OP(MIN_DIM, "MinBackward0", ag__max_dim_forward, ag__max_dim_backward, AG__CTX, 0,
       "d min(x, dim)/dx = 1 at each minimum along dim, else 0", NULL)

/* linalg.c: matrix products, transposition, inverse */
AG__OP(DOT, "DotBackward0", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A, "d(a.b)/da = b",
       "d(a.b)/db = a")
AG__OP(MV, "MvBackward0", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A,
       "d(A@b)/dA = g@b^T", "d(A@b)/db = A^T@g")
AG__OP(VM, "SqueezeBackward3", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A,
       "d(a@B)/da = g@B^T", "d(a@B)/dB = a^T@g")
AG__OP(MM, "MmBackward0", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A,
       "d(A@B)/dA = g@B^T", "d(A@B)/dB = A^T@g")
/* batched: PyTorch's last node is a view of a folded product, or a clone when a 2-D a
 * meets a batched b */
AG__OP(MATMUL_VIEW, "UnsafeViewBackward0", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A,
       "d(A@B)/dA = g@B^T", "d(A@B)/dB = A^T@g")
AG__OP(MATMUL_CLONE, "CloneBackward0", ag__matmul_forward, ag__matmul_backward, AG__B, AG__A,
       "d(A@B)/dA = g@B^T", "d(A@B)/dB = A^T@g")
AG__OP(T, "TBackward0", ag__transpose_forward, ag__transpose_backward, 0, 0,
       "the gradient, transposed back", NULL)
AG__OP(TRANSPOSE, "TransposeBackward0", ag__transpose_forward, ag__transpose_backward, 0, 0,
       "the gradient, transposed back", NULL)
AG__OP(INVERSE, "LinalgInvExBackward0", ag__no_replay, ag__inverse_backward, AG__OUT, 0,
       "d inv(A) = -inv(A)^T@g@inv(A)^T", NULL)

/* index.c: rows, slices, concatenation */
AG__OP(SELECT, "SelectBackward0", ag__take_forward, ag__select_backward, 0, 0,
       "the gradient at the selected index, 0 elsewhere", NULL)
AG__OP(SLICE, "SliceBackward0", ag__take_forward, ag__slice_backward, 0, 0,
       "the gradient in the slice, 0 elsewhere", NULL)
AG__OP(CAT, "CatBackward0", ag__join_forward, ag__cat_backward, 0, 0,
       "each input takes its part of the gradient", NULL)
AG__OP(STACK, "StackBackward0", ag__join_forward, ag__cat_backward, 0, 0,
       "each input takes its part of the gradient", NULL)

/* shape.c: views under another shape (view's backward: the gradient read in x's shape) */
AG__OP(UNSQUEEZE, "UnsqueezeBackward0", ag__view_forward, ag__view_backward, 0, 0,
       "the gradient, in x's shape", NULL)
AG__OP(SQUEEZE, "SqueezeBackward0", ag__view_forward, ag__view_backward, 0, 0,
       "the gradient, in x's shape", NULL)
AG__OP(SQUEEZE_DIM, "SqueezeBackward1", ag__view_forward, ag__view_backward, 0, 0,
       "the gradient, in x's shape", NULL)

/* compare.c: where (the comparisons are not recorded) */
AG__OP(WHERE, "WhereBackward0", ag__where_forward, ag__where_backward, AG__EXT, AG__EXT,
       "the gradient where cond, else 0", "the gradient where not cond, else 0")

/* softmax.c: softmax, log_softmax and logsumexp over one dimension */
AG__OP(SOFTMAX, "SoftmaxBackward0", ag__softmax_forward, ag__softmax_backward, AG__OUT, 0,
       "d softmax: y*(g - sum(g*y)) along dim", NULL)
AG__OP(LOG_SOFTMAX, "LogSoftmaxBackward0", ag__softmax_forward, ag__softmax_backward, AG__OUT, 0,
       "d log_softmax: g - exp(y)*sum(g) along dim", NULL)
AG__OP(LOGSUMEXP, "LogsumexpBackward0", ag__logsumexp_forward, ag__logsumexp_backward,
       AG__A | AG__OUT, 0, "d logsumexp(x)/dx = exp(x-y)", NULL)

/* nn/loss.c: losses (l1_loss is sub, abs and mean or sum, as in PyTorch 1.13). Their
 * options (reduction; weight and pos_weight, copied, broadcast to the input's shape;
 * ignore_index and the total weight of nll_loss) are in node(out)->ctx. */
AG__OP(MSE_LOSS, "MseLossBackward0", ag__mse_loss_forward, ag__mse_loss_backward,
       AG__A | AG__B | AG__CTX, AG__A | AG__B | AG__CTX,
       "d mse(x,t)/dx = 2*(x-t) (/n for the mean)", "d mse(x,t)/dt = -2*(x-t) (/n for the mean)")
AG__OP(BCE_LOSS, "BinaryCrossEntropyBackward0", ag__bce_loss_forward, ag__bce_loss_backward,
       AG__A | AG__B | AG__CTX, AG__A | AG__B | AG__CTX, "d bce(p,t)/dp = w*(p-t)/(p*(1-p))",
       "d bce(p,t)/dt = w*log((1-p)/p)")
AG__OP(BCE_LOGITS_LOSS, "BinaryCrossEntropyWithLogitsBackward0", ag__bce_logits_loss_forward,
       ag__bce_logits_loss_backward, AG__A | AG__B | AG__CTX, AG__A | AG__B | AG__CTX,
       "d bce(sigmoid(x),t)/dx = w*(sigmoid(x)-t) (with pos_weight)",
       "d bce(sigmoid(x),t)/dt = -w*x (with pos_weight)")
AG__OP(NLL_LOSS, "NllLossBackward0", ag__nll_loss_forward, ag__nll_loss_backward,
       AG__A | AG__B | AG__CTX, 0, "d nll/dlogp = -w at the target class, else 0", NULL)
