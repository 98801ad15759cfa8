using Google.Protobuf;
using Shim.Runc;
using Shim.Ttrpc;

namespace Shim.Core.Errors;

/// <summary>The one place where exceptions become ttrpc statuses.</summary>
public static class StatusMapping
{
    /// <summary>Maps any exception thrown by a handler to the status containerd receives.</summary>
    public static (StatusCode Code, string Message) ToStatus(Exception ex) => ex switch
    {
        ShimException e => (Code(e.Kind), e.Message),
        TtrpcException e => (e.Code, e.Message),
        // a missing runtime binary is a setup problem, as is one not found on PATH (OptionsCodec.ResolveBinary)
        RuncException { WasNotStarted: true } e => (StatusCode.FailedPrecondition, e.Message),
        RuncException { IsNotFound: true } e => (StatusCode.NotFound, e.Message),
        RuncException e => (StatusCode.Unknown, e.Message),
        InvalidProtocolBufferException e => (StatusCode.InvalidArgument, "malformed message: " + e.Message),
        OperationCanceledException => (StatusCode.Cancelled, "request cancelled"),
        _ => (StatusCode.Unknown, ex.Message),
    };

    /// <summary>The gRPC code of an error class.</summary>
    public static StatusCode Code(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.NotImplemented => StatusCode.Unimplemented,
        ErrorKind.Internal => StatusCode.Internal,
        _ => StatusCode.Unknown,
    };
}
