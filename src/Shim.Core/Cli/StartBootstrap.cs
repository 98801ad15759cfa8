using System.Text;
using System.Text.Json;
using Containerd.Runtime.Bootstrap.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.Core.Cli;

/// <summary>What `start` learned from its stdin about the daemon calling it.</summary>
/// <param name="Options">The runtime options Any (legacy stdin, or a bootstrap extension), if any.</param>
/// <param name="IsBootstrap">True for containerd 2.3+ (BootstrapParams naming our id and namespace).</param>
/// <param name="SocketDir">The daemon's socket_dir (2.3+), if set.</param>
/// <param name="Debug">The daemon asked for debug logging (2.3+ log level).</param>
public sealed record StartInput(Any? Options, bool IsBootstrap, string? SocketDir, bool Debug);

/// <summary>
/// Tells containerd lines apart using only what the caller sends, and answers each in the format it
/// reads (PROTOCOL.md §3): 2.3+ sends BootstrapParams on stdin and reads a BootstrapResult; 1.7 and
/// 2.0–2.2 set MAX_SHIM_VERSION and read JSON; 1.6 reads only a plain address.
/// </summary>
public static class StartBootstrap
{
    /// <summary>Parses start's stdin.</summary>
    public static StartInput Read(ReadOnlySpan<byte> stdin, string id, string ns)
    {
        if (stdin.IsEmpty)
        {
            return new StartInput(null, false, null, false);
        }
        // a legacy Any can parse as BootstrapParams too (fields 1 and 2 are strings in both), so the
        // identity must match as well, as containerd's own check on main does
        try
        {
            var bootstrap = BootstrapParams.Parser.ParseFrom(stdin);
            if (bootstrap.InstanceId == id && bootstrap.Namespace == ns)
            {
                Any? options = bootstrap.Extensions.Select(e => e.Value).FirstOrDefault(v => v is not null);
                return new StartInput(options, true, bootstrap.HasSocketDir && bootstrap.SocketDir.Length > 0 ? bootstrap.SocketDir : null, bootstrap.LogLevel is LogLevel.Debug or LogLevel.Trace);
            }
        }
        catch (InvalidProtocolBufferException)
        {
            // not a bootstrap message: legacy options
        }
        try
        {
            return new StartInput(Any.Parser.ParseFrom(stdin), false, null, false);
        }
        catch (InvalidProtocolBufferException)
        {
            return new StartInput(null, false, null, false); // unreadable options are reported by Create, not here
        }
    }

    /// <summary>
    /// The bytes to print on stdout for <paramref name="address"/>. <paramref name="podSandbox"/>:
    /// the bundle has no config.json, so the caller is containerd 2.x's shim sandboxer starting a pod.
    /// </summary>
    public static byte[] Answer(StartInput input, string address, bool maxShimVersionSet, bool podSandbox)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.IsBootstrap)
        {
            // we serve task v3 and v2 on one socket, so the native v3 is offered
            return new BootstrapResult { Version = 3, Address = address, Protocol = "ttrpc" }.ToByteArray();
        }
        if (maxShimVersionSet)
        {
            // 1.7 rejects version 3 and MAX_SHIM_VERSION (always "2") cannot tell it from 2.0–2.2:
            // version 2 suits both. A pod sandbox is started only by 2.x, which takes 3: with it the
            // pod's containers join this shim without a `start` and a `delete` of their own each
            // (core/runtime/v2/shim_manager.go Start, supportSandboxAPIVersion)
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("version", podSandbox ? 3 : 2);
                w.WriteString("address", address);
                w.WriteString("protocol", "ttrpc");
                w.WriteEndObject();
            }
            return buffer.ToArray();
        }
        return Encoding.UTF8.GetBytes(address);
    }
}
