using System.Text;
using Shim.Core.Options;
using Shim.Core.Processes;

namespace Shim.Core.Tests.Options;

/// <summary>
/// A bundle left by release 0.1.0's shim (Fixtures/bundle-0.1.0, byte for byte) is read by this
/// release: after an upgrade, containerd runs the new binary's `delete` in bundles an old shim wrote.
/// </summary>
public sealed class BundleFormatTests
{
    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "Fixtures", "bundle-0.1.0");

    private static readonly RuntimeOptions Written = new()
    {
        BinaryName = "/usr/sbin/runc",
        Root = "/run/containerd/runc",
        SystemdCgroup = true,
        ShimCgroup = "/rcs-shims",
    };

    [Fact]
    public void The_exit_record_of_release_0_1_0_reads_as_its_status_and_time()
    {
        var record = ExitRecord.Read(Fixture);
        Assert.NotNull(record);
        Assert.Equal(137, record.Value.Status);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddTicks(1796630400123456700 / 100), record.Value.ExitedAt);
    }

    [Fact]
    public void The_options_json_of_release_0_1_0_reads_as_the_options_it_kept()
    {
        var read = OptionsCodec.FromJson(File.ReadAllBytes(Path.Combine(Fixture, "options.json")));
        Assert.Equal(Written, read);
    }

    [Fact]
    public void This_release_still_writes_the_0_1_0_formats()
    {
        // a failure here means a format changed: keep Fixtures/bundle-0.1.0 and its readers, add a new fixture
        Assert.Equal(File.ReadAllText(Path.Combine(Fixture, "options.json")), Encoding.UTF8.GetString(OptionsCodec.ToJson(Written)));
        var bundle = Directory.CreateTempSubdirectory("rcs-bundle-format-").FullName;
        try
        {
            ExitRecord.Write(bundle, 137, DateTimeOffset.UnixEpoch.AddTicks(1796630400123456700 / 100));
            Assert.Equal(File.ReadAllText(Path.Combine(Fixture, "exit-status")), File.ReadAllText(Path.Combine(bundle, "exit-status")));
        }
        finally
        {
            Directory.Delete(bundle, recursive: true);
        }
    }
}
