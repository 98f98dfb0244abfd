from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferRequest(_message.Message):
    __slots__ = ("request_id", "split", "instruction", "boundary", "compression")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    split: int
    instruction: str
    boundary: bytes
    compression: str
    def __init__(self, request_id: _Optional[str] = ..., split: _Optional[int] = ..., instruction: _Optional[str] = ..., boundary: _Optional[bytes] = ..., compression: _Optional[str] = ...) -> None: ...

class InferReply(_message.Message):
    __slots__ = ("request_id", "actions", "rows", "cols", "server_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    SERVER_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    actions: _containers.RepeatedScalarFieldContainer[float]
    rows: int
    cols: int
    server_ms: float
    def __init__(self, request_id: _Optional[str] = ..., actions: _Optional[_Iterable[float]] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., server_ms: _Optional[float] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class BoundarySpec(_message.Message):
    __slots__ = ("compression", "tensors", "nbytes")
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    compression: str
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    nbytes: int
    def __init__(self, compression: _Optional[str] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., nbytes: _Optional[int] = ...) -> None: ...

class SplitInfo(_message.Message):
    __slots__ = ("split", "first_cloud_block", "boundaries")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    FIRST_CLOUD_BLOCK_FIELD_NUMBER: _ClassVar[int]
    BOUNDARIES_FIELD_NUMBER: _ClassVar[int]
    split: int
    first_cloud_block: str
    boundaries: _containers.RepeatedCompositeFieldContainer[BoundarySpec]
    def __init__(self, split: _Optional[int] = ..., first_cloud_block: _Optional[str] = ..., boundaries: _Optional[_Iterable[_Union[BoundarySpec, _Mapping]]] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("policy", "family", "n_blocks", "splits", "chunk_size", "action_dim", "compressions", "split_info", "block_names", "max_request_bytes", "cameras")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    N_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    ACTION_DIM_FIELD_NUMBER: _ClassVar[int]
    COMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_INFO_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    family: str
    n_blocks: int
    splits: _containers.RepeatedScalarFieldContainer[int]
    chunk_size: int
    action_dim: int
    compressions: _containers.RepeatedScalarFieldContainer[str]
    split_info: _containers.RepeatedCompositeFieldContainer[SplitInfo]
    block_names: _containers.RepeatedScalarFieldContainer[str]
    max_request_bytes: int
    cameras: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policy: _Optional[str] = ..., family: _Optional[str] = ..., n_blocks: _Optional[int] = ..., splits: _Optional[_Iterable[int]] = ..., chunk_size: _Optional[int] = ..., action_dim: _Optional[int] = ..., compressions: _Optional[_Iterable[str]] = ..., split_info: _Optional[_Iterable[_Union[SplitInfo, _Mapping]]] = ..., block_names: _Optional[_Iterable[str]] = ..., max_request_bytes: _Optional[int] = ..., cameras: _Optional[_Iterable[str]] = ...) -> None: ...
