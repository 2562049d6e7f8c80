#!/usr/bin/python3
"""Builds a tiny TensorFlow frozen graph (.pb) and a tiny Caffe model (.prototxt + .caffemodel) with
seeded random weights, without TensorFlow, Caffe or protoc, and every layer's output computed with
numpy as an independent reference, for tests/model/opencv_dnn_formats_test.cpp.

Usage: /usr/bin/python3 make_tf_caffe_models.py OUTPUT_DIR

The protobuf messages are a hand-written subset of the upstream definitions, with the upstream field
numbers, built with google.protobuf's descriptor_pb2 + message_factory:
  tensorflow/tensorflow: tensorflow/core/framework/graph.proto (GraphDef.node = 1),
    node_def.proto (NodeDef name 1, op 2, input 3, device 4, map<string, AttrValue> attr 5),
    attr_value.proto (AttrValue list 1, s 2, i 3, f 4, b 5, type 6, shape 7, tensor 8;
    ListValue s 2, i 3, f 4, b 5, type 6, shape 7), tensor.proto (TensorProto dtype 1,
    tensor_shape 2, version_number 3, tensor_content 4, float_val 5, int_val 7),
    tensor_shape.proto (TensorShapeProto dim 2, unknown_rank 3; Dim size 1, name 2),
    types.proto (DT_FLOAT = 1, DT_INT32 = 3).
  BVLC/caffe: src/caffe/proto/caffe.proto (NetParameter name 1, layer 100; LayerParameter name 1,
    type 2, bottom 3, top 4, blobs 7, convolution_param 106, inner_product_param 117,
    pooling_param 121, relu_param 123, input_param 143; BlobShape dim 1; BlobProto shape 7, data 5;
    ConvolutionParameter num_output 1, bias_term 2, pad 3, kernel_size 4, stride 6;
    PoolingParameter pool 1 (MAX 0, AVE 1), kernel_size 2, stride 3, pad 4;
    InnerProductParameter num_output 1, bias_term 2; InputParameter shape 1;
    ReLUParameter negative_slope 1).

Writes, in OUTPUT_DIR:
  input.npy            NCHW float32 batch (2 × 3 × 11 × 13) fed to both models
  tiny.pb              Placeholder "input" (NHWC) → Conv2D "conv1" (3×3, SAME, stride 1) + BiasAdd
                       "conv1/bias" → Relu "relu1" → MaxPool "pool1" (3×3, stride 2, SAME) →
                       Conv2D "conv2" (2×2, VALID, stride 1) + BiasAdd "conv2/bias" → Relu "relu2"
                       → Conv2D "conv3" (2×2, SAME: padded 0 before, 1 after; no bias)
                       → Reshape "flatten" (to [-1, K], NHWC order) → MatMul "fc" + BiasAdd
                       "fc/bias" → Relu "fc_relu"
  tf_<node>.npy        the node's output as TensorFlow computes it (NHWC for 4-D)
  caffe_tiny.prototxt  Input "data" → Convolution "conv1" (3×3, stride 2, pad 1) → ReLU "relu1"
                       (in place, top "conv1", as Caffe models write it) → Pooling "pool1" (MAX,
                       3×3, stride 2, ceil mode) → InnerProduct "fc1" → ReLU "relu2" → Pooling
  caffe_tiny.caffemodel the weights (BlobProto per layer)
  caffe_<layer>.npy    the layer's output as Caffe computes it (NCHW); caffe_conv1.npy is the
                       convolution before the in-place ReLU, caffe_relu1.npy after it
  bad.pb               the first third of tiny.pb
  bad.prototxt         not text format, beside bad.caffemodel (a copy of caffe_tiny.caffemodel)
  badweights.prototxt  a copy of caffe_tiny.prototxt, beside badweights.caffemodel (truncated)
"""
import math
import os
import shutil
import sys

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

OUT = sys.argv[1] if len(sys.argv) > 1 else "tf_caffe_data"
F = descriptor_pb2.FieldDescriptorProto

# ---- protobuf message definitions (subsets, upstream field numbers) ----------------------------


def add_message(file_proto, name, fields, nested=()):
    """fields: (name, number, type, label, type_name or None, packed, default or None)."""
    msg = file_proto.message_type.add() if isinstance(file_proto, descriptor_pb2.FileDescriptorProto) \
        else file_proto.nested_type.add()
    msg.name = name
    for fname, number, ftype, label, type_name, packed, default in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if packed:
            f.options.packed = True
        if default is not None:
            f.default_value = default
    for n in nested:
        n(msg)
    return msg


OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def tensorflow_file():
    fp = descriptor_pb2.FileDescriptorProto(name="tv_tensorflow_subset.proto", package="tensorflow",
                                            syntax="proto3")
    enum = fp.enum_type.add(name="DataType")
    for name, number in [("DT_INVALID", 0), ("DT_FLOAT", 1), ("DT_INT32", 3)]:
        enum.value.add(name=name, number=number)

    def dim(msg):
        add_message(msg, "Dim", [("size", 1, F.TYPE_INT64, OPT, None, False, None),
                                 ("name", 2, F.TYPE_STRING, OPT, None, False, None)])
    add_message(fp, "TensorShapeProto", [
        ("dim", 2, F.TYPE_MESSAGE, REP, ".tensorflow.TensorShapeProto.Dim", False, None),
        ("unknown_rank", 3, F.TYPE_BOOL, OPT, None, False, None)], nested=[dim])
    add_message(fp, "TensorProto", [
        ("dtype", 1, F.TYPE_ENUM, OPT, ".tensorflow.DataType", False, None),
        ("tensor_shape", 2, F.TYPE_MESSAGE, OPT, ".tensorflow.TensorShapeProto", False, None),
        ("version_number", 3, F.TYPE_INT32, OPT, None, False, None),
        ("tensor_content", 4, F.TYPE_BYTES, OPT, None, False, None),
        ("float_val", 5, F.TYPE_FLOAT, REP, None, True, None),
        ("int_val", 7, F.TYPE_INT32, REP, None, True, None)])

    def list_value(msg):
        add_message(msg, "ListValue", [
            ("s", 2, F.TYPE_BYTES, REP, None, False, None),
            ("i", 3, F.TYPE_INT64, REP, None, True, None),
            ("f", 4, F.TYPE_FLOAT, REP, None, True, None),
            ("b", 5, F.TYPE_BOOL, REP, None, True, None),
            ("type", 6, F.TYPE_ENUM, REP, ".tensorflow.DataType", True, None),
            ("shape", 7, F.TYPE_MESSAGE, REP, ".tensorflow.TensorShapeProto", False, None)])
    attr = add_message(fp, "AttrValue", [
        ("list", 1, F.TYPE_MESSAGE, OPT, ".tensorflow.AttrValue.ListValue", False, None),
        ("s", 2, F.TYPE_BYTES, OPT, None, False, None),
        ("i", 3, F.TYPE_INT64, OPT, None, False, None),
        ("f", 4, F.TYPE_FLOAT, OPT, None, False, None),
        ("b", 5, F.TYPE_BOOL, OPT, None, False, None),
        ("type", 6, F.TYPE_ENUM, OPT, ".tensorflow.DataType", False, None),
        ("shape", 7, F.TYPE_MESSAGE, OPT, ".tensorflow.TensorShapeProto", False, None),
        ("tensor", 8, F.TYPE_MESSAGE, OPT, ".tensorflow.TensorProto", False, None)],
        nested=[list_value])
    oneof = attr.oneof_decl.add(name="value")
    for f in attr.field:
        f.oneof_index = 0

    def attr_entry(msg):
        entry = add_message(msg, "AttrEntry", [
            ("key", 1, F.TYPE_STRING, OPT, None, False, None),
            ("value", 2, F.TYPE_MESSAGE, OPT, ".tensorflow.AttrValue", False, None)])
        entry.options.map_entry = True
    add_message(fp, "NodeDef", [
        ("name", 1, F.TYPE_STRING, OPT, None, False, None),
        ("op", 2, F.TYPE_STRING, OPT, None, False, None),
        ("input", 3, F.TYPE_STRING, REP, None, False, None),
        ("device", 4, F.TYPE_STRING, OPT, None, False, None),
        ("attr", 5, F.TYPE_MESSAGE, REP, ".tensorflow.NodeDef.AttrEntry", False, None)],
        nested=[attr_entry])
    add_message(fp, "GraphDef", [
        ("node", 1, F.TYPE_MESSAGE, REP, ".tensorflow.NodeDef", False, None)])
    del oneof
    return fp


def caffe_file():
    fp = descriptor_pb2.FileDescriptorProto(name="tv_caffe_subset.proto", package="caffe",
                                            syntax="proto2")
    add_message(fp, "BlobShape", [("dim", 1, F.TYPE_INT64, REP, None, True, None)])
    add_message(fp, "BlobProto", [
        ("data", 5, F.TYPE_FLOAT, REP, None, True, None),
        ("shape", 7, F.TYPE_MESSAGE, OPT, ".caffe.BlobShape", False, None)])
    add_message(fp, "ConvolutionParameter", [
        ("num_output", 1, F.TYPE_UINT32, OPT, None, False, None),
        ("bias_term", 2, F.TYPE_BOOL, OPT, None, False, "true"),
        ("pad", 3, F.TYPE_UINT32, REP, None, False, None),
        ("kernel_size", 4, F.TYPE_UINT32, REP, None, False, None),
        ("stride", 6, F.TYPE_UINT32, REP, None, False, None)])

    def pool_method(msg):
        enum = msg.enum_type.add(name="PoolMethod")
        enum.value.add(name="MAX", number=0)
        enum.value.add(name="AVE", number=1)
    add_message(fp, "PoolingParameter", [
        ("pool", 1, F.TYPE_ENUM, OPT, ".caffe.PoolingParameter.PoolMethod", False, "MAX"),
        ("kernel_size", 2, F.TYPE_UINT32, OPT, None, False, None),
        ("stride", 3, F.TYPE_UINT32, OPT, None, False, "1"),
        ("pad", 4, F.TYPE_UINT32, OPT, None, False, "0"),
        ("global_pooling", 12, F.TYPE_BOOL, OPT, None, False, "false")], nested=[pool_method])
    add_message(fp, "InnerProductParameter", [
        ("num_output", 1, F.TYPE_UINT32, OPT, None, False, None),
        ("bias_term", 2, F.TYPE_BOOL, OPT, None, False, "true")])
    add_message(fp, "InputParameter", [
        ("shape", 1, F.TYPE_MESSAGE, REP, ".caffe.BlobShape", False, None)])
    add_message(fp, "ReLUParameter", [
        ("negative_slope", 1, F.TYPE_FLOAT, OPT, None, False, "0")])
    add_message(fp, "LayerParameter", [
        ("name", 1, F.TYPE_STRING, OPT, None, False, None),
        ("type", 2, F.TYPE_STRING, OPT, None, False, None),
        ("bottom", 3, F.TYPE_STRING, REP, None, False, None),
        ("top", 4, F.TYPE_STRING, REP, None, False, None),
        ("blobs", 7, F.TYPE_MESSAGE, REP, ".caffe.BlobProto", False, None),
        ("convolution_param", 106, F.TYPE_MESSAGE, OPT, ".caffe.ConvolutionParameter", False, None),
        ("inner_product_param", 117, F.TYPE_MESSAGE, OPT, ".caffe.InnerProductParameter", False,
         None),
        ("pooling_param", 121, F.TYPE_MESSAGE, OPT, ".caffe.PoolingParameter", False, None),
        ("relu_param", 123, F.TYPE_MESSAGE, OPT, ".caffe.ReLUParameter", False, None),
        ("input_param", 143, F.TYPE_MESSAGE, OPT, ".caffe.InputParameter", False, None)])
    add_message(fp, "NetParameter", [
        ("name", 1, F.TYPE_STRING, OPT, None, False, None),
        ("layer", 100, F.TYPE_MESSAGE, REP, ".caffe.LayerParameter", False, None)])
    return fp


def message_classes(file_proto):
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    factory = message_factory.MessageFactory(pool)
    classes = {}

    # protobuf >= 4.21 has message_factory.GetMessageClass; 5.x dropped MessageFactory.GetPrototype.
    message_class = getattr(message_factory, "GetMessageClass", None) or factory.GetPrototype

    def collect(descriptor, prefix):
        classes[prefix + descriptor.name] = message_class(descriptor)
        for nested in descriptor.nested_types:
            collect(nested, prefix + descriptor.name + ".")
    for descriptor in pool.FindFileByName(file_proto.name).message_types_by_name.values():
        collect(descriptor, "")
    return classes


# ---- numpy references ----------------------------------------------------------------------------

def same_padding(size, kernel, stride):
    """TensorFlow's SAME padding: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_nhwc(x, w, stride, padding):
    """TensorFlow Conv2D: x N×H×W×C, w kh×kw×C×O (HWIO)."""
    kh, kw = w.shape[:2]
    if padding == "SAME":
        (pt, pb), (pl, pr) = same_padding(x.shape[1], kh, stride), same_padding(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (x.shape[1] - kh) // stride + 1
    ow = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            out += np.einsum("nhwc,co->nhwo", patch, w[i, j])
    return out


def maxpool_nhwc_same(x, k, stride):
    """TensorFlow MaxPool with SAME padding: padded cells never win (padded with -inf)."""
    (pt, pb), (pl, pr) = same_padding(x.shape[1], k, stride), same_padding(x.shape[2], k, stride)
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    oh = (x.shape[1] - k) // stride + 1
    ow = (x.shape[2] - k) // stride + 1
    out = np.full((x.shape[0], oh, ow, x.shape[3]), -np.inf)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, i:i + stride * (oh - 1) + 1:stride,
                                   j:j + stride * (ow - 1) + 1:stride, :])
    return out


def conv_nchw(x, w, b, stride, pad):
    """Caffe Convolution: x N×C×H×W, w O×C×kh×kw."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] - kh) // stride + 1
    ow = (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def caffe_pool_size(size, k, stride, pad):
    """Caffe's pooled size: ceil mode, the last window starting inside the (padded) input."""
    pooled = int(math.ceil((size + 2 * pad - k) / stride)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def caffe_pool(x, k, stride, pad, method):
    """Caffe Pooling (MAX / AVE) with ceil-mode output size; windows clipped at the input edge
    (AVE divides by the window clipped to the padded input, as Caffe does)."""
    n, c, h, w = x.shape
    ph, pw = caffe_pool_size(h, k, stride, pad), caffe_pool_size(w, k, stride, pad)
    out = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            hs, ws = i * stride - pad, j * stride - pad
            he, we = min(hs + k, h + pad), min(ws + k, w + pad)
            area = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            out[:, :, i, j] = window.max(axis=(2, 3)) if method == "MAX" \
                else window.sum(axis=(2, 3)) / area
    return out


def relu(x):
    return np.maximum(x, 0)


# ---- TensorFlow frozen graph -----------------------------------------------------------------------

def make_tf(rng, x_nchw):
    tf = message_classes(tensorflow_file())
    graph = tf["GraphDef"]()
    dt_float, dt_int32 = 1, 3

    def node(name, op, inputs=(), **attrs):
        n = graph.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, value in attrs.items():
            n.attr[key].CopyFrom(value)
        return n

    def attr(**kw):
        return tf["AttrValue"](**kw)

    def shape_proto(dims):
        s = tf["TensorShapeProto"]()
        for d in dims:
            s.dim.add(size=d)
        return s

    def const(name, array):
        array = np.ascontiguousarray(array)
        if array.dtype == np.int32:
            t = tf["TensorProto"](dtype=dt_int32, tensor_shape=shape_proto(array.shape))
            t.int_val.extend(array.ravel().tolist())
            dtype = dt_int32
        else:
            t = tf["TensorProto"](dtype=dt_float, tensor_shape=shape_proto(array.shape),
                                  tensor_content=array.astype("<f4").tobytes())
            dtype = dt_float
        node(name, "Const", value=attr(tensor=t), dtype=attr(type=dtype))

    def ints(*values):
        return attr(list=tf["AttrValue.ListValue"](i=list(values)))

    float_t = attr(type=dt_float)
    nhwc = attr(s=b"NHWC")

    x = x_nchw.transpose(0, 2, 3, 1).astype(np.float64)  # TensorFlow's NHWC view of the batch
    refs = {}
    node("input", "Placeholder", dtype=float_t, shape=attr(shape=shape_proto([-1] + list(x.shape[1:]))))

    def conv(name, source, source_ref, weight_shape, padding, bias=True):
        """A stride-1 Conv2D of `source` (numpy value `source_ref`) with seeded weights, then a
        BiasAdd when `bias`; records and returns the numpy reference of the last node."""
        w = rng.normal(0, 0.3, weight_shape).astype(np.float32)
        b = rng.normal(0, 0.1, weight_shape[-1]).astype(np.float32) if bias else None
        const(name + "/weights", w)
        if bias:
            const(name + "/biases", b)
        node(name, "Conv2D", [source, name + "/weights"], T=float_t, data_format=nhwc,
             padding=attr(s=padding.encode()), strides=ints(1, 1, 1, 1), dilations=ints(1, 1, 1, 1),
             use_cudnn_on_gpu=attr(b=True))
        out = conv_nhwc(source_ref, w.astype(np.float64), 1, padding)
        if not bias:
            refs[name] = out
            return out
        node(name + "/bias", "BiasAdd", [name, name + "/biases"], T=float_t, data_format=nhwc)
        refs[name + "/bias"] = out + b
        return refs[name + "/bias"]

    conv("conv1", "input", x, (3, 3, 3, 6), "SAME")
    node("relu1", "Relu", ["conv1/bias"], T=float_t)
    refs["relu1"] = relu(refs["conv1/bias"])
    node("pool1", "MaxPool", ["relu1"], T=float_t, data_format=nhwc, padding=attr(s=b"SAME"),
         ksize=ints(1, 3, 3, 1), strides=ints(1, 2, 2, 1))
    refs["pool1"] = maxpool_nhwc_same(refs["relu1"], 3, 2)

    conv("conv2", "pool1", refs["pool1"], (2, 2, 6, 5), "VALID")
    node("relu2", "Relu", ["conv2/bias"], T=float_t)
    refs["relu2"] = relu(refs["conv2/bias"])

    # 2 × 2 SAME, stride 1: TensorFlow pads asymmetrically (0 before, 1 after).
    conv("conv3", "relu2", refs["relu2"], (2, 2, 5, 4), "SAME", bias=False)

    features = int(np.prod(refs["conv3"].shape[1:]))
    const("flatten/shape", np.array([-1, features], np.int32))
    node("flatten", "Reshape", ["conv3", "flatten/shape"], T=float_t, Tshape=attr(type=dt_int32))
    refs["flatten"] = refs["conv3"].reshape(x.shape[0], -1)  # NHWC order, as TensorFlow flattens

    w3 = rng.normal(0, 0.2, (features, 4)).astype(np.float32)
    b3 = rng.normal(0, 0.1, 4).astype(np.float32)
    const("fc/weights", w3)
    const("fc/biases", b3)
    node("fc", "MatMul", ["flatten", "fc/weights"], T=float_t, transpose_a=attr(b=False),
         transpose_b=attr(b=False))
    node("fc/bias", "BiasAdd", ["fc", "fc/biases"], T=float_t, data_format=nhwc)
    refs["fc/bias"] = refs["flatten"] @ w3.astype(np.float64) + b3
    node("fc_relu", "Relu", ["fc/bias"], T=float_t)
    refs["fc_relu"] = relu(refs["fc/bias"])

    with open(os.path.join(OUT, "tiny.pb"), "wb") as f:
        f.write(graph.SerializeToString())
    for name, value in refs.items():
        np.save(os.path.join(OUT, "tf_" + name.replace("/", "_") + ".npy"), value.astype(np.float32))


# ---- Caffe -----------------------------------------------------------------------------------------

def make_caffe(rng, x):
    caffe = message_classes(caffe_file())
    net = caffe["NetParameter"](name="caffe_tiny")
    weights = caffe["NetParameter"](name="caffe_tiny")
    refs = {}

    def layer(name, type_, bottom, top, blobs=(), **params):
        for target, with_blobs in ((net, False), (weights, True)):
            lp = target.layer.add(name=name, type=type_)
            lp.bottom.extend(bottom)
            lp.top.extend(top)
            for key, value in params.items():
                getattr(lp, key).CopyFrom(value)
            if with_blobs:
                for blob in blobs:
                    bp = lp.blobs.add(shape=caffe["BlobShape"](dim=list(blob.shape)))
                    bp.data.extend(blob.astype(np.float32).ravel().tolist())

    layer("data", "Input", [], ["data"],
          input_param=caffe["InputParameter"](shape=[caffe["BlobShape"](dim=list(x.shape))]))
    w1 = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    layer("conv1", "Convolution", ["data"], ["conv1"], [w1, b1],
          convolution_param=caffe["ConvolutionParameter"](num_output=4, kernel_size=[3],
                                                          stride=[2], pad=[1]))
    refs["conv1"] = conv_nchw(x.astype(np.float64), w1.astype(np.float64), b1, 2, 1)
    layer("relu1", "ReLU", ["conv1"], ["conv1"])  # in place, as Caffe model zoo files do
    refs["relu1"] = relu(refs["conv1"])
    layer("pool1", "Pooling", ["conv1"], ["pool1"],
          pooling_param=caffe["PoolingParameter"](pool=0, kernel_size=3, stride=2))
    refs["pool1"] = caffe_pool(refs["relu1"], 3, 2, 0, "MAX")
    features = int(np.prod(refs["pool1"].shape[1:]))
    w2 = rng.normal(0, 0.2, (6, features)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 6).astype(np.float32)
    layer("fc1", "InnerProduct", ["pool1"], ["fc1"], [w2, b2],
          inner_product_param=caffe["InnerProductParameter"](num_output=6))
    refs["fc1"] = refs["pool1"].reshape(x.shape[0], -1) @ w2.T.astype(np.float64) + b2
    layer("relu2", "ReLU", ["fc1"], ["relu2"])
    refs["relu2"] = relu(refs["fc1"])

    with open(os.path.join(OUT, "caffe_tiny.prototxt"), "w") as f:
        f.write(text_format.MessageToString(net))
    with open(os.path.join(OUT, "caffe_tiny.caffemodel"), "wb") as f:
        f.write(weights.SerializeToString())
    for name, value in refs.items():
        np.save(os.path.join(OUT, f"caffe_{name}.npy"), value.astype(np.float32))
    return refs


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1, (2, 3, 11, 13)).astype(np.float32)
    np.save(os.path.join(OUT, "input.npy"), x)
    make_tf(rng, x)
    refs = make_caffe(rng, x)
    # Ceil mode matters here: floor mode would give a pooled height of 2.
    assert refs["pool1"].shape[2:] == (3, 3), refs["pool1"].shape
    # Damaged files: a truncated graph, a prototxt that is not text format, truncated weights.
    with open(os.path.join(OUT, "tiny.pb"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "bad.pb"), "wb") as f:
        f.write(data[: len(data) // 3])
    with open(os.path.join(OUT, "bad.prototxt"), "w") as f:
        f.write("layer { name: \"conv1\" type: \n this is { not a prototxt\n")
    shutil.copy(os.path.join(OUT, "caffe_tiny.caffemodel"), os.path.join(OUT, "bad.caffemodel"))
    shutil.copy(os.path.join(OUT, "caffe_tiny.prototxt"), os.path.join(OUT, "badweights.prototxt"))
    with open(os.path.join(OUT, "caffe_tiny.caffemodel"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "badweights.caffemodel"), "wb") as f:
        f.write(data[: len(data) // 2])


if __name__ == "__main__":
    main()
