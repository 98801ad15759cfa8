using Shim.Core.Errors;
using Shim.Core.Stdio;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// Every input the fuzzers found a failure with, replayed through its target (fuzz/run.sh TARGET
/// --replay runs the same bytes). Each failed before its fix with the exception named beside it.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class FuzzRegressionTests
{
    [Theory]
    // nesting past 64 levels: TomlException (then UNKNOWN)
    [InlineData("config-toml", "0042696E6172794E616D65203D205B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B5B307837665D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D5D")]
    // a NUL in a binary name with a slash: Path.GetFullPath's ArgumentException (then UNKNOWN)
    [InlineData("runtime-options", "00320E2F7573722F62696E2F0072756E63")]
    // a lone surrogate escape in the exec spec: InvalidOperationException (then UNKNOWN)
    [InlineData("exec-spec", "017B2261726773223A5B22D73DE29F84B45C7564653030222C225C7530303030222C225C5C225D2C22637764223A222F227D")]
    [InlineData("exec-spec", "017B225C7564383030223A317D")]
    // invalid UTF-8 and a lone surrogate in runc's log: InvalidOperationException out of LastErrorIn
    [InlineData("runc-log", "65223A2278227D0A7B226D7367223A226D222C226C6576656C223A226572726FFFFFFFFFFFFFFF72227D")]
    [InlineData("runc-log", "7B226C6576656C223A226572726F72222C226D7367223A225C7564383030227D0A")]
    // a damaged options.json: JsonException out of FromJson, and the delete action failed
    [InlineData("bundle-files", "017B2262696E6172795F6E616D65223A2272756E63222C22726F6F74223A222F72222C2273797374656D645F6367726F7570223A747275652C226E6F5F7069766F745F726F6F74223A66616C73652C226E6F5F6E65775F6B657972696E67223A66616C73652C22696F5F756964223A312C22696F5F676194AE3A322C227368696D5F6367726F7570223A222F73222C22637269755F776F726B5F70617468223A222F77227D")]
    [InlineData("bundle-files", "017B2262696E6172795F6E616D65223A225C7564383030227D")]
    // checkpoint work paths "/" (no parent: ArgumentNullException) and "a\0b" (ArgumentException), then UNKNOWN
    [InlineData("checkpoint-options", "004A012F")]
    [InlineData("checkpoint-options", "004A03610062")]
    // stdio "://x", "binary://x y" (UriFormatException, then UNKNOWN) and "a://", "x://[" (read as file paths)
    [InlineData("stdio-uri", "000A3A2F2F780A62696E6172793A2F2F7820790A613A2F2F0A783A2F2F5B")]
    public void A_found_input_no_longer_fails(string target, string hex)
    {
        FuzzTargets.Create(target).Run(Convert.FromHexString(hex));
    }

    [Fact]
    public async Task Found_requests_into_live_containers_get_a_status_that_says_what_was_wrong()
    {
        string io = LiveFuzzService.IoDir;
        var service = new ServiceTarget();
        await using (service.ConfigureAwait(false))
        {
            await service.StartAsync();
            var run = ServiceTarget.Target(service);
            // a binary-v2 logger that is a plain file: posix_spawn's EACCES was answered UNKNOWN
            run.Run(ServiceTarget.Encode("Create", new Containerd.Task.V2.CreateTaskRequest
            {
                Id = "c2", Bundle = LiveFuzzService.BundleOf("c2"), Stdin = io + "/fifo-out", Stdout = $"binary-v2://{io}/file.log",
            }));
            // no URI: UriFormatException, answered UNKNOWN
            run.Run(ServiceTarget.Encode("Create", new Containerd.Task.V2.CreateTaskRequest { Id = "c2", Bundle = LiveFuzzService.BundleOf("c2"), Stdout = "://x" }));
            // a CRIU work path of "/": ArgumentNullException, answered UNKNOWN
            run.Run(ServiceTarget.Encode("Checkpoint", new Containerd.Task.V2.CheckpointTaskRequest
            {
                Id = "c1", Path = io + "/image",
                Options = Shim.Protos.TypeUrls.Pack(new Containerd.Runc.V1.CheckpointOptions { WorkPath = "/" }),
            }));
            // a file:// log that is a FIFO without a reader (here behind a NUL): Create hung in open(2)
            run.Run(ServiceTarget.Encode("Create", new Containerd.Task.V2.CreateTaskRequest
            {
                Id = "c3", Bundle = LiveFuzzService.BundleOf("c3"), Stdout = $"file://{io}/fifo-out%00x?-1=2jN8RA&-1", Stderr = $"binary://{io}/fifo-in",
            }));
            run.Run(ServiceTarget.Encode("Create", new Containerd.Task.V2.CreateTaskRequest { Id = "c3", Bundle = LiveFuzzService.BundleOf("c3"), Stdout = $"file://{io}/fifo-out" }));
            // a signal number above SIGRTMAX: kill(2)'s EINVAL, answered UNKNOWN
            run.Run(ServiceTarget.Encode("Kill", new Containerd.Task.V2.KillRequest { Id = "c1", Signal = 67, All = true }));
            Assert.Equal(6, service.Outcomes.Where(kv => kv.Key.EndsWith(" InvalidArgument", StringComparison.Ordinal)).Sum(kv => kv.Value));
        }
    }

    [Theory]
    [InlineData("IoUid = -1")]
    [InlineData("IoGid = 4294967296")]
    public void A_uid_or_gid_outside_32_bits_in_CRI_TOML_is_an_invalid_argument(string toml)
    {
        // it was wrapped: -1 became 4294967295
        var ex = Assert.Throws<ShimException>(() => Shim.Core.Options.CriOptionsToml.Parse(toml, "config_body"));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
    }

    [Theory]
    [InlineData("://x")]
    [InlineData("binary://x y")]
    [InlineData("a://")]
    [InlineData("x://[")]
    [InlineData("fi le:///x")]
    public void A_stdio_string_that_is_no_URI_of_its_scheme_is_an_invalid_argument(string stdio)
    {
        var ex = Assert.Throws<ShimException>(() => StdioUri.Split(stdio));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains(stdio, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/run/x/c-stdout", "", "/run/x/c-stdout")]
    [InlineData("file:///var/log/c%201.log", "file", "/var/log/c 1.log")]
    [InlineData("binary:///usr/bin/logger?a=b", "binary", "/usr/bin/logger")]
    [InlineData("FIFO:///x", "fifo", "/x")]
    public void Stdio_strings_split_into_scheme_and_path(string stdio, string scheme, string path)
    {
        Assert.Equal((scheme, path), StdioUri.Split(stdio));
    }
}
