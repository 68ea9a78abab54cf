// The price book and plans `npm run dev` starts with, from what real products publish (their help
// pages, as users quote them): lemlist's credits (email finder 5 a lead, paid only for verified
// data; phone finder 20; calling 4 a minute; AI variables 1 a request; a 500-credit free trial
// once; Email Pro 1000 a seat a month; Multichannel Expert 1500 a seat a month plus 400 calling
// credits a seat a month, spendable only on calls (100 minutes at 4 credits); extra credits at
// $0.1 each), Landingi (1000 starter credits) and Visla (300 credits per dollar on Pro, 200 on
// Business; referral bonuses). PUTs are idempotent: re-running changes nothing.

/** @type {[string, Record<string, unknown>][]} */
export const FEATURES = [
  ["verified_email", { name: "Email finder & verifier", unit: "lead", creditsPerUnit: 5, chargeOnSuccess: true }],
  ["linkedin_enrichment", { name: "LinkedIn enrichment", unit: "lead", creditsPerUnit: 1 }],
  ["phone_finder", { name: "Phone number finder", unit: "lead", creditsPerUnit: 20, chargeOnSuccess: true }],
  ["calling", { name: "Phone calling", unit: "minute", creditsPerUnit: 4, unitRounding: "per_unit" }],
  ["ai_variables", { name: "AI variables", unit: "request", creditsPerUnit: 1 }],
  [
    "ai_reply",
    { name: "AI chat reply", unit: "request", creditsPerUnit: 2, tiers: { fast: 1, balanced: 2, premium: 5 } },
  ],
  ["livestream", { name: "Livestream with public viewing", unit: "minute", creditsPerUnit: 3 }],
];

/** @type {[string, Record<string, unknown>][]} */
export const PLANS = [
  [
    "lemlist-trial",
    { name: "lemlist free trial", paid: false, currency: "usd", creditsPerCurrencyUnit: 10, starterCredits: 500 },
  ],
  [
    "lemlist-email-pro",
    {
      name: "lemlist Email Pro",
      paid: true,
      currency: "usd",
      creditsPerCurrencyUnit: 10,
      monthlyCreditsPerSeat: 1000,
      packs: [
        { id: "1000-credits", priceMinor: 10000 },
        { id: "5000-credits", priceMinor: 50000 },
      ],
      customAmount: { minMinor: 1000, maxMinor: 500000 },
    },
  ],
  [
    "lemlist-multichannel-expert",
    {
      name: "lemlist Multichannel Expert",
      paid: true,
      currency: "usd",
      creditsPerCurrencyUnit: 10,
      monthlyCreditsPerSeat: 1500,
      monthlyFeatureCreditsPerSeat: { calling: 400 },
      customAmount: { minMinor: 1000, maxMinor: 500000 },
    },
  ],
  ["landingi", { name: "Landingi", paid: true, currency: "usd", creditsPerCurrencyUnit: 10, starterCredits: 1000 }],
  [
    "visla-pro",
    {
      name: "Visla Pro",
      paid: true,
      currency: "usd",
      creditsPerCurrencyUnit: 300,
      packs: [{ id: "10-usd", priceMinor: 1000 }],
      referral: { signupCredits: 100, upgradeCredits: 500 },
    },
  ],
  [
    "visla-business",
    {
      name: "Visla Business",
      paid: true,
      currency: "usd",
      creditsPerCurrencyUnit: 200,
      packs: [{ id: "10-usd", priceMinor: 1000 }],
      referral: { signupCredits: 100, upgradeCredits: 500 },
    },
  ],
];
