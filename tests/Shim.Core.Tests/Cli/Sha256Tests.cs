using System.Text;
using Shim.Core.Cli;

namespace Shim.Core.Tests.Cli;

public class Sha256Tests
{
    [Fact]
    public void Known_answers_from_fips_180_examples()
    {
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Hex(""));
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Hex("abc"));
        Assert.Equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"));
    }

    [Fact]
    public void Every_length_across_block_and_padding_boundaries_matches_the_platform_digest()
    {
        var random = new Random(7);
        for (int length = 0; length <= 300; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), Sha256.Hash(data));
        }
    }

    private static string Hex(string text) => Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes(text)));
}
