using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Protos;

namespace Shim.Core.Tests.Options;

public class OptionsCodecTests
{
    [Fact]
    public void No_options_means_defaults_with_containerds_runc_root()
    {
        var o = OptionsCodec.Decode(null);
        Assert.Equal("/run/containerd/runc/ns1", o.RuncRoot("ns1"));
        Assert.Equal("", o.BinaryName);
    }

    [Fact]
    public void Runc_v1_options_are_read_from_their_any()
    {
        var any = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/opt/runc", Root = "/r", SystemdCgroup = true, NoPivotRoot = true, IoUid = 5 });
        var o = OptionsCodec.Decode(any);
        Assert.Equal(("/opt/runc", "/r/ns", true, true, 5u), (o.BinaryName, o.RuncRoot("ns"), o.SystemdCgroup, o.NoPivotRoot, o.IoUid));
    }

    [Fact]
    public void Legacy_linux_runc_options_are_mapped_instead_of_rejected()
    {
        var o = OptionsCodec.Decode(TypeUrls.Pack(new Containerd.Linux.Runc.RuncOptions { Runtime = "/bin/crun", RuntimeRoot = "/rr", SystemdCgroup = true }));
        Assert.Equal(("/bin/crun", "/rr"), (o.BinaryName, o.Root));
        var c = OptionsCodec.Decode(TypeUrls.Pack(new Containerd.Linux.Runc.CreateOptions { NoPivotRoot = true, IoGid = 9 }));
        Assert.Equal((true, 9u), (c.NoPivotRoot, c.IoGid));
    }

    [Fact]
    public void Unknown_types_and_garbage_are_invalid_arguments()
    {
        var unknown = new Any { TypeUrl = "example.com/Other", Value = ByteString.CopyFromUtf8("x") };
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<ShimException>(() => OptionsCodec.Decode(unknown)).Kind);
        var garbage = new Any { TypeUrl = "containerd.runc.v1.Options", Value = ByteString.CopyFrom(0xff, 0xff, 0xff) };
        Assert.Equal(ErrorKind.InvalidArgument, Assert.Throws<ShimException>(() => OptionsCodec.Decode(garbage)).Kind);
    }

    [Fact]
    public void Options_survive_the_round_trip_through_options_json()
    {
        var o = new RuntimeOptions { BinaryName = "runc", Root = "/x", SystemdCgroup = true, NoNewKeyring = true, IoUid = 1, IoGid = 2, ShimCgroup = "/s", CriuWorkPath = "/w" };
        Assert.Equal(o, OptionsCodec.FromJson(OptionsCodec.ToJson(o)));
    }
}

public class CriOptionsTests
{
    [Fact]
    public void Cri_runtimeoptions_toml_maps_go_field_names()
    {
        var any = Shim.Protos.TypeUrls.Pack(new Runtimeoptions.V1.Options
        {
            TypeUrl = "io.containerd.runc.v1.Options",
            ConfigBody = Google.Protobuf.ByteString.CopyFromUtf8("BinaryName = \"/usr/sbin/runc\"\nRoot = \"/run/x\"\nSystemdCgroup = true\nIoUid = 7\nunknown_key = 1\n"),
        });
        var o = OptionsCodec.Decode(any);
        Assert.Equal(("/usr/sbin/runc", "/run/x/k8s.io", true, 7u), (o.BinaryName, o.RuncRoot("k8s.io"), o.SystemdCgroup, o.IoUid));
    }

    [Fact]
    public void Cri_options_may_come_from_a_file_and_snake_case_keys_work()
    {
        string path = Path.GetTempFileName();
        File.WriteAllText(path, "binary_name = \"crun\"\nno_pivot_root = true\n");
        try
        {
            var o = OptionsCodec.Decode(Shim.Protos.TypeUrls.Pack(new Runtimeoptions.V1.Options { ConfigPath = path }));
            Assert.Equal(("crun", true), (o.BinaryName, o.NoPivotRoot));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Broken_toml_is_an_invalid_argument()
    {
        var any = Shim.Protos.TypeUrls.Pack(new Runtimeoptions.V1.Options { ConfigBody = Google.Protobuf.ByteString.CopyFromUtf8("Root = = broken") });
        Assert.Equal(Shim.Core.Errors.ErrorKind.InvalidArgument, Assert.Throws<Shim.Core.Errors.ShimException>(() => OptionsCodec.Decode(any)).Kind);
    }

    [Theory]
    [InlineData("/dev/zero", "not a regular file")]
    [InlineData("fifo", "not a regular file")]
    [InlineData("/nonexistent/options.toml", "failed: No such file or directory (ENOENT)")]
    [InlineData("dir", "not a regular file")]
    [InlineData("big", "larger than 1 MiB")]
    public void A_config_path_that_is_not_a_small_regular_file_is_refused_at_once(string which, string reason)
    {
        // issue 20: /dev/zero grew the shim until it died and a FIFO never returned
        string dir = Directory.CreateTempSubdirectory("rcs-options-").FullName;
        try
        {
            string path = which switch
            {
                "fifo" => Path.Combine(dir, "fifo"),
                "big" => Path.Combine(dir, "big.toml"),
                "dir" => dir,
                _ => which,
            };
            if (which == "fifo")
            {
                Shim.Os.Fifos.Create(path);
            }
            if (which == "big")
            {
                File.WriteAllText(path, "# " + new string('x', OptionsCodec.MaxConfigFileBytes) + "\n");
            }
            var any = Shim.Protos.TypeUrls.Pack(new Runtimeoptions.V1.Options { ConfigPath = path });

            var ex = Assert.Throws<Shim.Core.Errors.ShimException>(() => OptionsCodec.Decode(any));

            Assert.Equal(Shim.Core.Errors.ErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains($"reading runtime options file {path} failed", ex.Message, StringComparison.Ordinal);
            Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
