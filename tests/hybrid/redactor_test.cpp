#include "edgelm/hybrid/redactor.h"

#include <gtest/gtest.h>

#include "edgelm/security/hash.h"
#include "hybrid/recognizers.h"

namespace edgelm::hybrid {
namespace {

std::unique_ptr<Redactor> make(const RedactionPolicy& policy = {}) {
  auto r = Redactor::create(policy);
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

TEST(Checksums, PublishedVectors) {
  // ISO 13616 example IBANs (the registry's own) and the card industry's test numbers.
  EXPECT_TRUE(detail::iban_valid("DE89370400440532013000"));
  EXPECT_TRUE(detail::iban_valid("GB82WEST12345698765432"));
  EXPECT_TRUE(detail::iban_valid("FR1420041010050500013M02606"));
  EXPECT_FALSE(detail::iban_valid("DE89370400440532013001"));
  EXPECT_FALSE(detail::iban_valid("DE8937040044053201300"));  // one character short
  EXPECT_TRUE(detail::is_card_number("4111111111111111"));
  EXPECT_TRUE(detail::is_card_number("378282246310005"));
  EXPECT_TRUE(detail::is_card_number("5555555555554444"));
  EXPECT_FALSE(detail::is_card_number("4111111111111112"));
  EXPECT_FALSE(detail::is_card_number("1234567812345670"));  // Luhn-valid, no issuer
}

TEST(Redactor, SameValueSamePlaceholderAndRestore) {
  auto redactor = make();
  Vault vault;
  auto first = redactor->redact("Mail ann@example.com or call +1 415 867 5309.", vault);
  EXPECT_EQ(first.text, "Mail <EMAIL_1> or call <PHONE_1>.");
  // A second turn of the same conversation: the same email (other case) keeps its placeholder.
  auto second = redactor->redact("Is ANN@example.com right? Also bob@example.org.", vault);
  EXPECT_EQ(second.text, "Is <EMAIL_1> right? Also <EMAIL_2>.");
  EXPECT_EQ(second.counts[static_cast<size_t>(EntityType::kEmail)], 2);
  EXPECT_EQ(vault.restore("Write to <EMAIL_2>, not <EMAIL_1> or <EMAIL_9>."),
            "Write to bob@example.org, not ann@example.com or <EMAIL_9>.");
}

TEST(Redactor, PolicyActions) {
  auto policy = RedactionPolicy::from_json(
      nlohmann::json::parse(
          R"({"default": "drop", "entities": {"CREDIT_CARD": "mask", "EMAIL": "hash",
                                 "DATE": "keep"}, "mask_keep_last": 4, "hash_salt": "s"})"),
      "policy.json");
  ASSERT_TRUE(policy.has_value()) << policy.error().to_string();
  auto redactor = make(*policy);
  Vault vault;
  auto result = redactor->redact(
      "Card 4111-1111-1111-1111, mail a@b.example, on 2024-01-02, ssn 123-45-6789.", vault);
  // The hash is SHA-256("s\0EMAIL\0a@b.example"), first 8 bytes in hex.
  std::string material = std::string("s") + '\0' + "EMAIL" + '\0' + "a@b.example";
  std::string digest = security::to_hex(security::sha256(material)).substr(0, 16);
  EXPECT_EQ(result.text,
            "Card ****-****-****-1111, mail <EMAIL#" + digest + ">, on 2024-01-02, ssn .");
  EXPECT_TRUE(vault.empty());
}

TEST(Redactor, PolicyErrorsNameTheField) {
  auto bad = RedactionPolicy::from_json(
      nlohmann::json::parse(R"({"entities": {"EMAILS": "mask"}})"), "p.json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("EMAILS"), std::string::npos);
  bad = RedactionPolicy::from_json(nlohmann::json::parse(R"({"default": "erase"})"), "p.json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("'default'"), std::string::npos);
}

TEST(Redactor, InvalidUtf8KeepsOffsets) {
  auto redactor = make();
  Vault vault;
  std::string text = "\xff\xfe mail x@y.example \xc3";
  auto result = redactor->redact(text, vault);
  EXPECT_EQ(result.text, "\xff\xfe mail <EMAIL_1> \xc3");
}

TEST(Vault, JsonRoundTripAndValidation) {
  Vault vault;
  vault.placeholder_for(EntityType::kPerson, "Zoë Lindqvist");
  vault.placeholder_for(EntityType::kEmail, "z@example.se");
  auto copy = Vault::from_json(vault.to_json(), "vault.json");
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->restore("<PERSON_1> <EMAIL_1>"), "Zoë Lindqvist z@example.se");
  EXPECT_EQ(copy->placeholder_for(EntityType::kEmail, "Z@EXAMPLE.SE"), "<EMAIL_1>");
  auto tampered = nlohmann::json::parse(
      R"({"entries": [{"placeholder": "<EMAIL_7>", "type": "EMAIL", "value": "a"}]})");
  EXPECT_FALSE(Vault::from_json(tampered, "vault.json").has_value());
}

TEST(StreamRestorer, PlaceholdersSplitAcrossChunksAtEveryPosition) {
  Vault vault;
  vault.placeholder_for(EntityType::kEmail, "ann@example.com");
  vault.placeholder_for(EntityType::kPerson, "Ann Lee");
  const std::string answer = "Dear <PERSON_1>, we wrote to <EMAIL_1> (not <EMAIL_2>) <3 <PERSON_1>";
  const std::string expected = vault.restore(answer);
  EXPECT_EQ(expected, "Dear Ann Lee, we wrote to ann@example.com (not <EMAIL_2>) <3 Ann Lee");
  // Every way of cutting the answer in three chunks gives the same text, and no chunk of output
  // ever shows part of a placeholder.
  for (size_t a = 0; a <= answer.size(); ++a) {
    for (size_t b = a; b <= answer.size(); b += 3) {
      StreamRestorer restorer(vault);
      std::string out;
      for (auto piece : {answer.substr(0, a), answer.substr(a, b - a), answer.substr(b)}) {
        std::string emitted = restorer.feed(piece);
        EXPECT_EQ(emitted.find("<PERSON"), std::string::npos);
        EXPECT_EQ(emitted.find("<EMAIL_1"), std::string::npos);
        out += emitted;
      }
      out += restorer.finish();
      ASSERT_EQ(out, expected) << "cuts at " << a << ", " << b;
    }
  }
}

}  // namespace
}  // namespace edgelm::hybrid
