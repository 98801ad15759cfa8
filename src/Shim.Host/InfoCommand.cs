using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Options;
using Shim.Os;
using Shim.Os.Io;
using Shim.Protos;
using Shim.Runc;

namespace Shim.Host;

/// <summary>
/// `-info` (containerd 2.x): a bare RuntimeInfo protobuf on stdout, with runc's `features` document,
/// which containerd reads to check for idmapped mounts and to read runtime annotations; without it
/// when `runc features` fails.
/// </summary>
internal static class InfoCommand
{
    public static async Task<int> RunAsync(Reaper reaper)
    {
        Any? options = null;
        byte[] stdin = StdStreams.ReadStdin();
        if (stdin.Length > 0)
        {
            try
            {
                options = Any.Parser.ParseFrom(stdin);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new ArgumentException($"reading the runtime options on stdin: {stdin.Length} bytes that are no protobuf Any: {ex.Message}", ex);
            }
        }
        var runtimeOptions = OptionsCodec.Decode(options);
        reaper.Start();
        // the action's composition root: runc's output is read on the process's io-loop, started here
        var runc = new RuncClient(new RuncConfig(OptionsCodec.ResolveBinary(runtimeOptions.BinaryName), runtimeOptions.RuncRoot("default"), "/dev/null"), new RuncRunner(reaper, IoLoop.Shared));
        var info = new RuntimeInfo
        {
            Name = ShimInfo.RuntimeName,
            Version = new RuntimeVersion { Version = ShimInfo.Version, Revision = ShimInfo.Revision },
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            byte[] features = await runc.FeaturesAsync(timeout.Token).ConfigureAwait(false);
            info.Features = new Any { TypeUrl = TypeUrls.OciFeatures, Value = ByteString.CopyFrom(features) };
        }
        catch (Exception ex) when (ex is RuncException or OperationCanceledException)
        {
            // containerd's shim (manager.Info) only warns when `features` fails (a runtime without it, e.g. youki)
            // and still answers with what it has: containerd then treats the features as unknown
            StdStreams.WriteStderr($"{ShimInfo.RuntimeName}: warning: failed to retrieve features from {runc.Config.Binary}: {ex.Message}\n");
        }
        if (options is not null)
        {
            info.Options = options;
        }
        StdStreams.WriteStdout(info.ToByteArray());
        return 0;
    }
}
