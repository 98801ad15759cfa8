using Google.Protobuf;
using Shim.Runc;
using Shim.Ttrpc;

namespace Shim.Core.Errors;

/// <summary>
/// The one place where exceptions become ttrpc statuses and their messages: what was attempted, on
/// what, and why, in words.
/// </summary>
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
        _ => (StatusCode.Unknown, Describe(ex)),
    };

    /// <summary>
    /// True for the exceptions that already say what was attempted on what (the shim's own, the
    /// runtime binary's, ttrpc's) or that have a status of their own (cancellation).
    /// </summary>
    public static bool SaysWhatFailed(Exception ex) =>
        ex is ShimException or RuncException or TtrpcException or OperationCanceledException;

    /// <summary>
    /// Any other failure of <paramref name="operation"/> ("create c1"), told as that operation and
    /// its reason: "create c1: open /b/init.pid: No such file or directory (ENOENT)". Unknown, as
    /// containerd's shim answers for an error without a class; a malformed embedded message stays
    /// InvalidArgument.
    /// </summary>
    public static ShimException InContext(string operation, Exception ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        return ex is InvalidProtocolBufferException
            ? new ShimException(ErrorKind.InvalidArgument, $"{operation}: malformed message: {ex.Message}", ex)
            : new ShimException(ErrorKind.Unknown, $"{operation}: {Describe(ex)}", ex);
    }

    /// <summary>
    /// Why something failed, in words: the exception's message (ErrnoException: the call, strerror's
    /// text and the errno's name; the runtime library's own texts are compiled in, not resource keys:
    /// Shim.Host.csproj), the one inner failure of an AggregateException, the type's name when there is no text.
    /// </summary>
    public static string Describe(Exception ex) => ex switch
    {
        null => "unknown error",
        AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerExceptions[0]),
        _ when string.IsNullOrWhiteSpace(ex.Message) => ex.GetType().Name,
        _ => ex.Message,
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
