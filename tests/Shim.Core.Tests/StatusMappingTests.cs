using System.Text.RegularExpressions;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Runc;
using Shim.Ttrpc;

namespace Shim.Core.Tests;

public partial class StatusMappingTests
{
    /// <summary>A resource key such as Arg_OutOfMemoryException or IO_FileNotFound_FileName: never in a message a user reads.</summary>
    [GeneratedRegex(@"\b[A-Z][a-z]+_[A-Za-z_]+\b")]
    internal static partial Regex ResourceKey();

    [Theory]
    [InlineData(ErrorKind.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorKind.AlreadyExists, StatusCode.AlreadyExists)]
    [InlineData(ErrorKind.FailedPrecondition, StatusCode.FailedPrecondition)]
    [InlineData(ErrorKind.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorKind.NotImplemented, StatusCode.Unimplemented)]
    [InlineData(ErrorKind.Unavailable, StatusCode.Unavailable)]
    [InlineData(ErrorKind.Internal, StatusCode.Internal)]
    [InlineData(ErrorKind.Unknown, StatusCode.Unknown)]
    public void Each_error_kind_has_its_grpc_code(ErrorKind kind, StatusCode code)
    {
        Assert.Equal((code, "what failed"), StatusMapping.ToStatus(new ShimException(kind, "what failed")));
    }

    [Fact]
    public void Runc_failures_keep_runcs_text_and_gone_containers_are_not_found()
    {
        var (code, message) = StatusMapping.ToStatus(new RuncException("/usr/sbin/runc", "kill", 1, "container not running"));
        Assert.Equal(StatusCode.NotFound, code);
        Assert.Contains("runc kill failed: container not running", message, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unknown, StatusMapping.ToStatus(new RuncException("/usr/sbin/runc", "create", 1, "bad config")).Code);
    }

    [Fact]
    public void Runcs_own_failed_prefix_is_not_repeated()
    {
        var ex = new RuncException("/usr/sbin/runc", "create", 1, "runc create failed: unexpected EOF");
        Assert.Equal("runc create failed: unexpected EOF", ex.Message);
        Assert.Equal("runc create failed: unexpected EOF", ex.RuncMessage);
    }

    [Fact]
    public void A_runtime_binary_that_cannot_be_executed_is_a_failed_precondition()
    {
        var (code, message) = StatusMapping.ToStatus(RuncException.NotStarted("/nonexistent/runc", "create", "No such file or directory (ENOENT)"));
        Assert.Equal(StatusCode.FailedPrecondition, code);
        Assert.Equal("runc create failed: cannot execute runtime binary /nonexistent/runc: No such file or directory (ENOENT)", message);
    }

    [Fact]
    public void Malformed_protobuf_is_an_invalid_argument()
    {
        var bad = Assert.ThrowsAny<InvalidProtocolBufferException>(() => Google.Protobuf.WellKnownTypes.Duration.Parser.ParseFrom([0xff, 0xff, 0xff]));
        Assert.Equal(StatusCode.InvalidArgument, StatusMapping.ToStatus(bad).Code);
    }

    private static Exception Thrown(Action action)
    {
        try
        {
            action();
        }
#pragma warning disable CA1031 // the table wants whatever the runtime library throws
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return ex;
        }
        throw new InvalidOperationException("nothing was thrown");
    }

    /// <summary>What the handlers can throw, as containerd receives it from a call of "create c1" (the handler wrapper's context).</summary>
    public static TheoryData<string, Exception, StatusCode, string> Failures()
    {
        string missing = $"/nonexistent-{Guid.NewGuid():N}/init.pid";
        return new()
        {
            // the shim's own, the runtime's and ttrpc's errors say what failed on what already: as they are
            { "shim", new ShimException(ErrorKind.NotFound, "exec e1 of container c1: process does not exist"), StatusCode.NotFound, "exec e1 of container c1: process does not exist" },
            { "runtime", new RuncException("/usr/bin/crun", "create", 1, "the rootfs path `/x` does not exist"), StatusCode.Unknown, "crun create failed: the rootfs path `/x` does not exist" },
            { "gone", new RuncException("/usr/bin/crun", "kill", 1, "container `c1` is not running"), StatusCode.NotFound, "crun kill failed: container `c1` is not running" },
            { "ttrpc", new TtrpcException(StatusCode.Unavailable, "ttrpc: connection lost: reset"), StatusCode.Unavailable, "ttrpc: connection lost: reset" },
            { "cancelled", new OperationCanceledException(), StatusCode.Cancelled, "request cancelled" },
            // everything else gets the operation in front of its reason
            { "errno", new ErrnoException(2, $"open {missing}"), StatusCode.Unknown, $"create c1: open {missing}: No such file or directory (ENOENT)" },
            { "file not found", Thrown(() => File.ReadAllText(missing)), StatusCode.Unknown, $"create c1: Could not find a part of the path '{missing}'." },
            { "access denied", new UnauthorizedAccessException($"Access to the path '{missing}' is denied."), StatusCode.Unknown, $"create c1: Access to the path '{missing}' is denied." },
            { "out of memory", Thrown(() => _ = new byte[Array.MaxLength + 1]), StatusCode.Unknown, "create c1: Array dimensions exceeded supported range." },
            { "aggregate", new AggregateException(new IOException("console socket: peer hung up without sending a pty master")), StatusCode.Unknown, "create c1: console socket: peer hung up without sending a pty master" },
            { "no text", new WordlessException(), StatusCode.Unknown, "create c1: WordlessException" },
            { "protobuf", Thrown(() => Google.Protobuf.WellKnownTypes.Duration.Parser.ParseFrom([0xff, 0xff, 0xff])), StatusCode.InvalidArgument, "create c1: malformed message: " },
        };
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1032:Implement standard exception constructors", Justification = "a test double without a message")]
    private sealed class WordlessException : Exception
    {
        public override string Message => "";
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public void Every_failure_reaches_containerd_as_its_operation_object_and_reason_in_words(string what, Exception thrown, StatusCode code, string message)
    {
        ArgumentNullException.ThrowIfNull(thrown);
        Assert.True(thrown is not OutOfMemoryException || what == "out of memory");
        var reached = StatusMapping.SaysWhatFailed(thrown) ? thrown : StatusMapping.InContext("create c1", thrown);
        var status = StatusMapping.ToStatus(reached);
        Assert.True(status.Code == code, $"{what}: {status.Code}, expected {code}");
        Assert.StartsWith(message, status.Message, StringComparison.Ordinal);
        Assert.DoesNotMatch(ResourceKey(), status.Message);
        if (!StatusMapping.SaysWhatFailed(thrown))
        {
            Assert.Same(thrown, reached.InnerException);   // the cause stays attached for the log
        }
    }

    [Fact]
    public void A_failure_that_reaches_the_mapper_without_context_is_still_in_words()
    {
        Assert.Equal((StatusCode.Unknown, "open /x: No such file or directory (ENOENT)"), StatusMapping.ToStatus(new ErrnoException(2, "open /x")));
        Assert.Equal((StatusCode.Unknown, "WordlessException"), StatusMapping.ToStatus(new WordlessException()));
    }
}
